// @sluice/sdk: Sluice's evaluation core and client, with no dependencies and
// no Node built-ins, for browsers, Node >= 18, Deno, Bun, React Native and
// edge runtimes.

export { compile, unitId } from "./ruleset.js";
export type { Assignment, Attributes, CompiledRuleset, InvalidRuleCode, Reason, Warning, WarningCode } from "./ruleset.js";
export { createClient } from "./client.js";
export type { Client, ClientOptions, ClientStats } from "./client.js";
