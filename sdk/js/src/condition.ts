// The targeting condition language (SPEC.md §6), compiled once into closures.
//
// A condition object becomes a `Predicate` over a document (the user's
// attributes, or an array element for `$elemMatch`); what one value must
// satisfy becomes a `Test`. Operands are checked, regexes built, version
// strings padded and `$in` lists turned into sets at compile time, so
// evaluation is plain calls. A missing attribute is `null`, as in GrowthBook.
//
// Compilation always builds GrowthBook's runtime behaviour (lenient: a part
// that cannot work never matches) and reports every problem found on the way
// with its JSON path, as a `Problem` code: the words are in diagnostics.ts,
// out of the main bundle. Strict compilation, for rulesets, is refusing a
// condition with any problem; the conformance suite runs the predicate as is.

/** Whether a document satisfies a condition. */
export type Predicate = (doc: unknown) => boolean;
type Test = Predicate;
type Json = Record<string, unknown>;

/** Saved groups: group id → member values, for `$inGroup` / `$notInGroup`. */
export type SavedGroups = Record<string, unknown>;

/** What is wrong with one part of a condition (SPEC.md §6, strict compilation). */
export const enum Problem {
  NotObject,
  NotArray,
  NotPrimitive,
  NotBoolean,
  NotNumberOrOperators,
  NotStringOrNumber,
  NotGroupName,
  NotArrayGroup,
  UnknownGroup,
  NotRegexString,
  RegexSyntax,
  LookAround,
  BackReference,
  NotTypeName,
  UnknownOperator,
  MixedKeys,
}

/**
 * Receives each problem: the JSON path of the part (`$and[1].age.$gt`, `""`
 * for the condition itself) and, for an unknown group or operator or a regex
 * that does not compile, the group, the operator or the engine's message.
 */
export type Report = (at: string, problem: Problem, detail?: string) => void;

const always = () => true;
const never = () => false;
/** A string, number, boolean or null. */
const primitive = (v: unknown) => v === null || typeof v !== "object";
const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

export function isObject(v: unknown): v is Json {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** GrowthBook's `isOperatorObject`: non-empty, every key starts with `$`. */
function isOperatorObject(v: Json): boolean {
  const keys = Object.keys(v);
  return keys.length > 0 && keys.every((k) => k[0] === "$");
}

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
  const index = String(Number(key)) === key ? Number(key) : -1;
  // Only a key Object.prototype has needs the slower own-property check.
  const inherited = key in Object.prototype;
  return (cur) => {
    if (cur === null || typeof cur !== "object") return null;
    if (Array.isArray(cur)) return cur[index] ?? null;
    return inherited && !hasOwn(cur, key) ? null : (cur as Json)[key] ?? null;
  };
}

/** A getter for a dotted path (`a.b.0`); anything missing along the way is null. */
export function pathGetter(path: string): (doc: unknown) => unknown {
  const steps = path.split(".").map(property);
  if (steps.length === 1) return steps[0];
  return (doc) => steps.reduce((cur, step) => step(cur), doc);
}

function allOf(parts: Test[]): Test {
  if (parts.length === 1) return parts[0];
  return (x) => {
    for (const p of parts) if (!p(x)) return false;
    return true;
  };
}

function anyOf(parts: Predicate[]): Predicate {
  return parts.length === 0 ? always : (doc) => parts.some((p) => p(doc));
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
  const text = ((typeof input === "string" || typeof input === "number") && String(input)) || "0";
  const parts = text.replace(/(^v|\+.*$)/g, "").split(/[-.]/);
  if (parts.length === 3) parts.push("~");
  return parts.map((p) => (/^\d+$/.test(p) ? p.padStart(5) : p)).join("-");
}

const TYPES = ["string", "number", "boolean", "object", "array", "null"];

/** Look-around and back-references: JavaScript has them, the Rust regex dialect of the spec does not. */
function unsupportedRegex(pattern: string): Problem.LookAround | Problem.BackReference | null {
  // Left to right: a back-reference, a look-around, or something skipped: an
  // escape (so `\(?=` is a literal) or a class up to its end (so `[(?=]` is
  // literals), which stops before a back-reference inside it.
  for (const [, back, look] of pattern.matchAll(/(\\[1-9]|\\k<)|(\(\?<?[=!])|\\[^]?|\[(?:\\[^1-9k]|\\k(?!<)|[^\\\]])*/g)) {
    if (back) return Problem.BackReference;
    if (look) return Problem.LookAround;
  }
  return null;
}

/** `$alli`'s test for a plain string member: equal after lower-casing. */
function foldedTest(s: string): Test {
  const lower = s.toLowerCase();
  return (v) => String(v).toLowerCase() === lower;
}

/**
 * GrowthBook's `isIn`, with strings lower-cased first for `$ini`; negated for
 * the operators whose names start `$n` (`$nin`, `$nini`, `$notInGroup`).
 */
function inList(members: unknown[], fold: boolean, name: string): Test {
  const lower = (x: unknown) => (fold && typeof x === "string" ? x.toLowerCase() : x);
  const set = new Set(members.map(lower));
  const has = (x: unknown) => set.has(lower(x));
  const test: Test = (v) => (Array.isArray(v) ? v.some(has) : has(v));
  return name[1] === "n" ? negate(test) : test;
}

/**
 * Compiles a condition (`null` matches everyone), telling `report` of each
 * problem. `groups` are the saved groups; rulesets carry none, so there
 * `$inGroup` names an unknown group.
 */
export function compilePredicate(condition: unknown, groups: SavedGroups, report: Report): Predicate {
  /** A problem that makes this part never match; the others, reported, leave it working. */
  const fail = (at: string, problem: Problem, detail?: string): Test => (report(at, problem, detail), never);

  /** A condition object: every entry holds (GrowthBook's `evalCondition`). */
  function node(cond: unknown, at: string): Predicate {
    if (!isObject(cond)) return fail(at, Problem.NotObject);
    return allOf(Object.keys(cond).map((key) => entry(key, cond[key], join(at, key))));
  }

  function entry(key: string, value: unknown, at: string): Predicate {
    if (key === "$not") return isObject(value) ? negate(node(value, at)) : fail(at, Problem.NotObject);
    if (key === "$and" || key === "$or" || key === "$nor") {
      if (!Array.isArray(value)) return fail(at, Problem.NotArray);
      const parts = value.map((item, i) => node(item, `${at}[${i}]`));
      // `$nor` is not `$or`: an empty `$nor` is false, as in GrowthBook.
      return key === "$and" ? allOf(parts) : key === "$or" ? anyOf(parts) : negate(anyOf(parts));
    }
    const get = pathGetter(key);
    const test = valueTest(value, at);
    return (doc) => test(get(doc));
  }

  /** What one value must satisfy (GrowthBook's `evalConditionValue`). */
  function valueTest(cond: unknown, at: string): Test {
    if (typeof cond === "string") return (v) => v === cond || String(v) === cond;
    if (typeof cond === "number") return (v) => Number(v) === cond;
    if (typeof cond === "boolean") return (v) => v !== null && !!v === cond;
    if (cond === null) return (v) => v === null;
    if (isObject(cond) && isOperatorObject(cond)) {
      return allOf(Object.keys(cond).map((op) => operator(op, cond[op], join(at, op))));
    }
    if (isObject(cond) && Object.keys(cond).some((k) => k[0] === "$")) report(at, Problem.MixedKeys);
    return (v) => deepEqual(v, cond);
  }

  /** One operator (GrowthBook's `evalOperatorCondition`). */
  function operator(name: string, arg: unknown, at: string): Test {
    const is = (ok: boolean, problem: Problem) => ok || report(at, problem);
    switch (name) {
      case "$exists":
        is(typeof arg === "boolean", Problem.NotBoolean);
        return arg ? (v) => v !== null : (v) => v === null;
      case "$in": case "$ini": case "$nin": case "$nini": {
        if (!Array.isArray(arg)) return fail(at, Problem.NotArray);
        const bad = arg.findIndex((m) => !primitive(m));
        if (bad >= 0) report(`${at}[${bad}]`, Problem.NotPrimitive);
        return inList(arg, name === "$ini" || name === "$nini", name);
      }
      case "$inGroup": case "$notInGroup": {
        if (typeof arg !== "string") return fail(at, Problem.NotGroupName);
        const members = hasOwn(groups, arg) ? groups[arg] : undefined;
        if (members === undefined) report(at, Problem.UnknownGroup, arg);
        else if (!Array.isArray(members)) return fail(at, Problem.NotArrayGroup);
        return inList(members ?? [], false, name);
      }
      case "$not": return negate(valueTest(arg, at));
      case "$size": {
        is(typeof arg === "number" || isObject(arg), Problem.NotNumberOrOperators);
        const test = valueTest(arg, at);
        return (v) => Array.isArray(v) && test(v.length);
      }
      case "$elemMatch": {
        if (!isObject(arg)) return fail(at, Problem.NotObject);
        const check = isOperatorObject(arg) ? valueTest(arg, at) : node(arg, at);
        // GrowthBook skips falsy elements.
        return (v) => Array.isArray(v) && v.some((x) => !!x && check(x));
      }
      case "$all": case "$alli": {
        if (!Array.isArray(arg)) return fail(at, Problem.NotArray);
        const tests = arg.map((item, i) => (name === "$alli" && typeof item === "string" ? foldedTest(item) : valueTest(item, `${at}[${i}]`)));
        return (v) => Array.isArray(v) && tests.every((t) => v.some(t));
      }
      case "$regex": case "$regexi": {
        if (typeof arg !== "string") return fail(at, Problem.NotRegexString);
        const unsupported = unsupportedRegex(arg);
        if (unsupported) report(at, unsupported);
        try {
          const re = new RegExp(arg, name === "$regexi" ? "i" : "");
          return (v) => re.test(String(v));
        } catch (e) {
          return fail(at, Problem.RegexSyntax, (e as Error).message);
        }
      }
      case "$type":
        if (!TYPES.includes(arg as string)) return fail(at, Problem.NotTypeName);
        return (v) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v) === arg;
    }
    // The comparisons: JavaScript's own `<` and `===`, the spec's semantics
    // exactly; `$vgt`, `$veq`, … compare padded versions of both sides.
    const compare = COMPARE[name.replace("$v", "$")];
    if (!compare) return fail(at, Problem.UnknownOperator, name);
    if (name === "$eq" || name === "$ne") is(primitive(arg), Problem.NotPrimitive);
    else is(typeof arg === "string" || typeof arg === "number", Problem.NotStringOrNumber);
    if (name[1] !== "v") return (v) => compare(v, arg);
    const padded = paddedVersion(arg);
    return (v) => compare(paddedVersion(v), padded);
  }

  return condition === null || condition === undefined ? always : node(condition, "");
}

function negate(f: Test): Test {
  return (x) => !f(x);
}
