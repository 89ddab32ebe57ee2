// The targeting condition language (SPEC.md §6), compiled once into closures.
//
// A condition object becomes a `Predicate` over a document (the user's
// attributes, or an array element for `$elemMatch`); what one value must
// satisfy becomes a `Test`. Operands are checked, regexes built, version
// strings padded and `$in` lists turned into sets at compile time, so
// evaluation is plain calls. A missing attribute is `null`, as in GrowthBook.
//
// Strict compilation (rulesets) turns every problem into a ConditionError
// naming its JSON path; lenient compilation (GrowthBook's runtime behaviour,
// for its conformance suite) turns the offending part into "never matches".

/** Whether a document satisfies a condition. */
export type Predicate = (doc: unknown) => boolean;
type Test = (value: unknown) => boolean;
type Json = Record<string, unknown>;

/** Saved groups: group id → member values, for `$inGroup` / `$notInGroup`. */
export type SavedGroups = Record<string, unknown>;

/** Why a condition does not compile strictly, and where (e.g. `country.$regex`). */
export class ConditionError extends Error {
  constructor(readonly path: string, problem: string) {
    super(`${path || "condition"}: ${problem}`);
  }
}

const always: Predicate = () => true;
const never = () => false;
const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** GrowthBook's `isOperatorObject`: non-empty, every key starts with `$`. */
function isOperatorObject(v: Json): boolean {
  const keys = Object.keys(v);
  return keys.length > 0 && keys.every((k) => k[0] === "$");
}

function wrongType(at: string, expected: string): ConditionError {
  return new ConditionError(at, `expected ${expected}`);
}

const PRIMITIVE = "a string, number, boolean or null";

/** Strict equality and JavaScript's relational operators, by operator name. */
const COMPARE: Record<string, (a: any, b: any) => boolean> = {
  $eq: (a, b) => a === b,
  $ne: (a, b) => a !== b,
  $lt: (a, b) => a < b,
  $lte: (a, b) => a <= b,
  $gt: (a, b) => a > b,
  $gte: (a, b) => a >= b,
};

const join = (at: string, key: string) => (at ? `${at}.${key}` : key);

/** Reads one step of a path: an own property, or a canonical index of an array; else null. */
export function property(key: string): (cur: unknown) => unknown {
  const index = /^(0|[1-9][0-9]*)$/.test(key) ? Number(key) : -1;
  const inherited = key in Object.prototype;
  return (cur) => {
    if (cur === null || typeof cur !== "object") return null;
    if (Array.isArray(cur)) return index >= 0 ? cur[index] ?? null : null;
    if (inherited && !hasOwn(cur, key)) return null;
    const v = (cur as Json)[key];
    return v === undefined ? null : v;
  };
}

/** A getter for a dotted path (`a.b.0`); anything missing along the way is null. */
export function pathGetter(path: string): (doc: unknown) => unknown {
  const steps = path.split(".").map(property);
  if (steps.length === 1) return steps[0];
  return (doc) => steps.reduce((cur, step) => step(cur), doc);
}

function allOf<T>(parts: ((x: T) => boolean)[]): (x: T) => boolean {
  const [a, b, c] = parts;
  switch (parts.length) {
    case 0: return always;
    case 1: return a;
    case 2: return (x) => a(x) && b(x);
    case 3: return (x) => a(x) && b(x) && c(x);
    default: return (x) => parts.every((p) => p(x));
  }
}

function anyOf(parts: Predicate[]): Predicate {
  return parts.length === 0 ? always : (doc) => parts.some((p) => p(doc));
}

/** `$nor`: none holds; an empty `$nor` is false, as in GrowthBook. */
function noneOf(parts: Predicate[]): Predicate {
  return parts.length === 0 ? never : (doc) => !parts.some((p) => p(doc));
}

/** Deep equality with a JSON literal; numbers by value, object key order ignored. */
function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(b)) {
    return Array.isArray(a) && a.length === b.length && b.every((x, i) => deepEqual(a[i] ?? null, x));
  }
  if (!isObject(b) || !isObject(a)) return false;
  const keys = Object.keys(b);
  return Object.keys(a).length === keys.length && keys.every((k) => hasOwn(a, k) && deepEqual(a[k] ?? null, b[k]));
}

/** GrowthBook's `paddedVersionString`: comparable as a plain string. */
export function paddedVersion(input: unknown): string {
  const text = typeof input === "number" ? String(input) : input;
  const parts = (typeof text === "string" && text !== "" ? text : "0").replace(/(^v|\+.*$)/g, "").split(/[-.]/);
  if (parts.length === 3) parts.push("~");
  return parts.map((p) => (/^[0-9]+$/.test(p) ? p.padStart(5, " ") : p)).join("-");
}

function typeOf(v: unknown): string {
  if (v === null) return "null";
  return Array.isArray(v) ? "array" : typeof v;
}

const TYPES = ["string", "number", "boolean", "object", "array", "null"];

/** Look-around and back-references: JavaScript has them, the Rust regex dialect of the spec does not. */
function unsupportedRegex(pattern: string): string | null {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      const next = pattern[++i] ?? "";
      if (/[1-9]/.test(next) || (next === "k" && pattern[i + 1] === "<")) return "back-references";
    } else if (inClass) {
      inClass = c !== "]";
    } else if (c === "[") {
      inClass = true;
    } else if (c === "(" && /^\(\?<?[=!]/.test(pattern.slice(i, i + 4))) {
      return "look-around";
    }
  }
  return null;
}

function stringTest(s: string, fold: boolean): Test {
  if (fold) {
    const lower = s.toLowerCase();
    return (v) => String(v).toLowerCase() === lower;
  }
  return (v) => (typeof v === "string" ? v === s : String(v) === s);
}

/** GrowthBook's `isIn`, with strings lower-cased first for `$ini`. */
function inList(members: unknown[], fold: boolean): Test {
  const lower = (x: unknown) => (fold && typeof x === "string" ? x.toLowerCase() : x);
  const list = members.map(lower);
  const set = new Set(list);
  const has = list.length <= 8 ? (x: unknown) => list.includes(lower(x)) : (x: unknown) => set.has(lower(x));
  return (v) => (Array.isArray(v) ? v.some(has) : has(v));
}

/** The compiler for one mode; returns the root compile function. */
function compiler(strict: boolean, groups: SavedGroups | null): (cond: unknown) => Predicate {

  /** In lenient mode a failing part becomes `fallback`; in strict mode the error stands. */
  function recover<T>(build: () => T, fallback: T): T {
    try {
      return build();
    } catch (e) {
      if (strict || !(e instanceof ConditionError)) throw e;
      return fallback;
    }
  }

  function root(cond: unknown): Predicate {
    if (cond === null || cond === undefined) return always;
    return recover(() => node(cond, ""), never);
  }

  /** A condition object: every entry holds (GrowthBook's `evalCondition`). */
  function node(cond: unknown, at: string): Predicate {
    if (!isObject(cond)) throw wrongType(at, "an object");
    return allOf(
      Object.keys(cond).map((key) => {
        const value = cond[key];
        const here = join(at, key);
        switch (key) {
          case "$or": return recover(() => anyOf(list(value, here)), never);
          case "$nor": return recover(() => noneOf(list(value, here)), never);
          case "$and": return recover(() => allOf(list(value, here)), never);
          case "$not": return recover(() => negate(node(value, here)), never);
          default: {
            const get = pathGetter(key);
            const test = recover(() => valueTest(value, here, false), never);
            return (doc: unknown) => test(get(doc));
          }
        }
      }),
    );
  }

  function list(value: unknown, at: string): Predicate[] {
    if (!Array.isArray(value)) throw wrongType(at, "an array");
    return value.map((item, i) => recover(() => node(item, `${at}[${i}]`), never));
  }

  /** What one value must satisfy (GrowthBook's `evalConditionValue`). */
  function valueTest(cond: unknown, at: string, fold: boolean): Test {
    switch (typeof cond) {
      case "string": return stringTest(cond, fold);
      case "number": return (v) => (typeof v === "number" ? v === cond : Number(v) === cond);
      case "boolean": return (v) => v !== null && !!v === cond;
    }
    if (cond === null) return (v) => v === null;
    if (isObject(cond) && isOperatorObject(cond)) {
      return allOf(Object.keys(cond).map((op) => recover(() => operator(op, cond[op], join(at, op)), never)));
    }
    if (strict && isObject(cond) && Object.keys(cond).some((k) => k[0] === "$")) {
      throw new ConditionError(at, "mixes operators and fields");
    }
    return (v) => deepEqual(v, cond);
  }

  /** One operator (GrowthBook's `evalOperatorCondition`). */
  function operator(name: string, arg: unknown, at: string): Test {
    switch (name) {
      case "$eq": case "$ne": {
        if (strict && arg !== null && typeof arg === "object") throw wrongType(at, PRIMITIVE);
        return (v) => COMPARE[name](v, arg);
      }
      case "$lt": case "$lte": case "$gt": case "$gte": case "$veq": case "$vne": case "$vgt": case "$vgte": case "$vlt": case "$vlte": {
        if (strict && typeof arg !== "string" && typeof arg !== "number") throw wrongType(at, "a string or number");
        // JavaScript's own `<` and `===`: the spec's semantics exactly.
        const compare = COMPARE[name.replace("$v", "$")];
        if (name[1] !== "v") return (v) => compare(v, arg);
        const padded = paddedVersion(arg);
        return (v) => compare(paddedVersion(v), padded);
      }
      case "$exists": {
        if (strict && typeof arg !== "boolean") throw wrongType(at, "a boolean");
        return arg ? (v) => v !== null : (v) => v === null;
      }
      case "$in": case "$nin": case "$ini": case "$nini": {
        const test = inList(members(arg, at), name === "$ini" || name === "$nini");
        return name === "$in" || name === "$ini" ? test : (v) => !test(v);
      }
      case "$inGroup": case "$notInGroup": {
        const test = inList(group(arg, at), false);
        return name === "$inGroup" ? test : (v) => !test(v);
      }
      case "$not": return negate(valueTest(arg, at, false));
      case "$size": {
        if (strict && typeof arg !== "number" && !isObject(arg)) throw wrongType(at, "a number or operators");
        const test = valueTest(arg, at, false);
        return (v) => Array.isArray(v) && test(v.length);
      }
      case "$elemMatch": return elemMatch(arg, at);
      case "$all": case "$alli": {
        if (!Array.isArray(arg)) throw wrongType(at, "an array");
        const tests = arg.map((item, i) => valueTest(item, `${at}[${i}]`, name === "$alli"));
        return (v) => Array.isArray(v) && tests.every((t) => v.some((x) => t(x)));
      }
      case "$regex": case "$regexi": {
        const re = regex(arg, name === "$regexi" ? "i" : "", at);
        return (v) => re.test(typeof v === "string" ? v : String(v));
      }
      case "$type": {
        if (typeof arg !== "string" || !TYPES.includes(arg)) throw wrongType(at, "a type name");
        return (v) => typeOf(v) === arg;
      }
      default: throw new ConditionError(at, `unknown operator ${name}`);
    }
  }

  function members(arg: unknown, at: string): unknown[] {
    if (!Array.isArray(arg)) throw wrongType(at, "an array");
    const bad = strict ? arg.findIndex((m) => m !== null && typeof m === "object") : -1;
    if (bad >= 0) throw wrongType(`${at}[${bad}]`, PRIMITIVE);
    return arg;
  }

  function group(arg: unknown, at: string): unknown[] {
    if (typeof arg !== "string") throw wrongType(at, "a group name");
    const members = groups && hasOwn(groups, arg) ? groups[arg] : undefined;
    if (members === undefined) {
      if (strict) throw new ConditionError(at, `unknown group ${arg}`);
      return [];
    }
    if (!Array.isArray(members)) throw wrongType(at, "an array group");
    return members;
  }

  function elemMatch(arg: unknown, at: string): Test {
    if (!isObject(arg)) throw wrongType(at, "an object");
    const check: Test = isOperatorObject(arg) ? valueTest(arg, at, false) : node(arg, at);
    // GrowthBook skips falsy elements.
    return (v) => Array.isArray(v) && v.some((x) => !!x && check(x));
  }

  function regex(arg: unknown, flags: string, at: string): RegExp {
    if (typeof arg !== "string") throw wrongType(at, "a regex string");
    const unsupported = strict ? unsupportedRegex(arg) : null;
    if (unsupported) throw new ConditionError(at, `regex: no ${unsupported}`);
    try {
      return new RegExp(arg, flags);
    } catch (e) {
      throw new ConditionError(at, (e as Error).message);
    }
  }
  return root;
}

function negate<T>(f: (x: T) => boolean): (x: T) => boolean {
  return (x) => !f(x);
}

/**
 * Compiles strictly (as for rulesets): any unknown operator, invalid regex,
 * wrong operand type or unknown saved group throws a ConditionError with its
 * JSON path. `null` matches everyone.
 */
export function compileCondition(condition: unknown, groups: SavedGroups | null = null): Predicate {
  if (condition !== null && condition !== undefined && !isObject(condition)) {
    throw wrongType("", "an object");
  }
  return compiler(true, groups)(condition);
}

/** Compiles with GrowthBook's runtime leniency: what it would not match never matches. Never throws. */
export function compileConditionLenient(condition: unknown, groups: SavedGroups = {}): Predicate {
  return compiler(false, groups)(condition);
}
