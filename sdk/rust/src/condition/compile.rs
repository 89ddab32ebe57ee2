//! Parsing a JSON condition into the evaluation tree, strictly or leniently.

use regex::RegexBuilder;
use serde_json::{Map, Value};

use crate::js::{self, Primitive, Relation};

use super::eval::{ElemMatch, InSet, JsType, Node, Op, Path, StrSet, Test, VersionOp, NO_CLAUSE};
use super::version;
use super::{Condition, ConditionError, ConditionErrorKind, SavedGroups};

/// Compiled regexes are capped so a hostile ruleset cannot make us build a
/// huge automaton (the regex crate's default limit is 10 MiB).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

pub(crate) struct Compiler<'g> {
    strict: bool,
    groups: Option<&'g SavedGroups>,
}

type Result<T> = std::result::Result<T, ConditionError>;

fn err(path: &str, kind: ConditionErrorKind, message: impl Into<String>) -> ConditionError {
    ConditionError {
        path: path.to_owned(),
        message: message.into(),
        kind,
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(at: &str, expected: &str, got: &Value) -> ConditionError {
    err(
        at,
        ConditionErrorKind::WrongType,
        format!("expected {expected}, got {}", type_name(got)),
    )
}

/// GrowthBook's `isOperatorObject`: non-empty, every key starts with `$`.
fn is_operator_object(map: &Map<String, Value>) -> bool {
    !map.is_empty() && map.keys().all(|k| k.starts_with('$'))
}

impl<'g> Compiler<'g> {
    pub(crate) fn strict(groups: Option<&'g SavedGroups>) -> Self {
        Compiler {
            strict: true,
            groups,
        }
    }

    pub(crate) fn lenient(groups: &'g SavedGroups) -> Self {
        Compiler {
            strict: false,
            groups: Some(groups),
        }
    }

    /// In strict mode an error propagates; in lenient mode it becomes the
    /// given "never matches" fallback.
    fn recover<T>(&self, r: Result<T>, fallback: impl FnOnce() -> T) -> Result<T> {
        match r {
            Ok(v) => Ok(v),
            Err(e) if self.strict => Err(e),
            Err(_) => Ok(fallback()),
        }
    }

    pub(crate) fn condition(&self, condition: &Value) -> Result<Condition> {
        let root = match condition {
            // No condition: everyone matches (GrowthBook skips a falsy condition).
            Value::Null => Node::True,
            other => self.recover(self.node(other, ""), || Node::Never)?,
        };
        Ok(Condition { root })
    }

    /// A condition object (GrowthBook's `evalCondition`).
    fn node(&self, cond: &Value, at: &str) -> Result<Node> {
        let Value::Object(map) = cond else {
            return Err(wrong_type(at, "a condition object", cond));
        };
        let mut children = Vec::with_capacity(map.len());
        for (key, value) in map {
            let here = join(at, key);
            let child = match key.as_str() {
                "$or" => self
                    .recover(self.list(value, &here), || Vec::from([Node::Never]))
                    .map(|c| {
                        if c.is_empty() {
                            Node::True
                        } else {
                            Node::Or(c.into_boxed_slice())
                        }
                    })?,
                // An empty (or, leniently, malformed) `$nor` is false, as in
                // GrowthBook's `!evalOr([])`.
                "$nor" => self.recover(self.list(value, &here), Vec::new).map(|c| {
                    if c.is_empty() {
                        Node::Never
                    } else {
                        Node::Nor(c.into_boxed_slice())
                    }
                })?,
                "$and" => self
                    .recover(self.list(value, &here), || Vec::from([Node::Never]))
                    .map(|c| Node::And(c.into_boxed_slice()))?,
                "$not" => {
                    let inner = self.recover(self.node(value, &here), || Node::True)?;
                    Node::Not(Box::new(inner))
                }
                // Any other key, `$`-prefixed or not, is an attribute path.
                _ => Node::Field {
                    path: path(key),
                    test: self.recover(self.test(value, &here, false), never_test)?,
                },
            };
            children.push(child);
        }
        Ok(match children.len() {
            0 => Node::True,
            1 => children.pop().unwrap_or(Node::True),
            _ if children.iter().all(|c| matches!(c, Node::Field { .. })) => Node::Fields(
                children
                    .into_iter()
                    .filter_map(|c| match c {
                        Node::Field { path, test } => Some((path, test, NO_CLAUSE)),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => Node::And(children.into_boxed_slice()),
        })
    }

    /// The array operand of `$or`, `$nor`, `$and`.
    fn list(&self, value: &Value, at: &str) -> Result<Vec<Node>> {
        let Value::Array(items) = value else {
            return Err(wrong_type(at, "an array of conditions", value));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let here = format!("{at}[{i}]");
                self.recover(self.node(item, &here), || Node::Never)
            })
            .collect()
    }

    /// What one value must satisfy (GrowthBook's `evalConditionValue`).
    fn test(&self, cond: &Value, at: &str, fold: bool) -> Result<Test> {
        Ok(match cond {
            Value::String(s) if fold => Test::StrEqFold(s.to_lowercase().into()),
            Value::String(s) => Test::StrEq(s.as_str().into()),
            Value::Number(n) => Test::NumEq(js::number_f64(n)),
            Value::Bool(b) => Test::Bool(*b),
            Value::Null => Test::IsNull,
            Value::Array(_) => Test::DeepEq(cond.clone()),
            Value::Object(map) if is_operator_object(map) => {
                let mut ops = Vec::with_capacity(map.len());
                for (op, operand) in map {
                    let here = join(at, op);
                    ops.push(self.recover(self.op(op, operand, &here), || Op::Never)?);
                }
                if ops.len() == 1 {
                    match ops.pop() {
                        Some(op) => Test::One(op),
                        None => Test::Ops(Box::new([])),
                    }
                } else {
                    Test::Ops(ops.into_boxed_slice())
                }
            }
            Value::Object(map) => {
                if self.strict && map.keys().any(|k| k.starts_with('$')) {
                    return Err(err(
                        at,
                        ConditionErrorKind::MixedKeys,
                        "an object mixing operators and plain keys is compared literally; \
                         use only operators or only plain keys",
                    ));
                }
                Test::DeepEq(cond.clone())
            }
        })
    }

    /// One operator (GrowthBook's `evalOperatorCondition`).
    fn op(&self, name: &str, operand: &Value, at: &str) -> Result<Op> {
        Ok(match name {
            "$veq" => self.version(VersionOp::Eq, operand, at)?,
            "$vne" => self.version(VersionOp::Ne, operand, at)?,
            "$vgt" => self.version(VersionOp::Gt, operand, at)?,
            "$vgte" => self.version(VersionOp::Gte, operand, at)?,
            "$vlt" => self.version(VersionOp::Lt, operand, at)?,
            "$vlte" => self.version(VersionOp::Lte, operand, at)?,
            "$eq" | "$ne" => {
                if self.strict && matches!(operand, Value::Array(_) | Value::Object(_)) {
                    return Err(wrong_type(at, "a string, number, boolean or null", operand));
                }
                if name == "$eq" {
                    Op::Eq(operand.clone())
                } else {
                    Op::Ne(operand.clone())
                }
            }
            "$lt" => self.relation(Relation::Lt, operand, at)?,
            "$lte" => self.relation(Relation::Lte, operand, at)?,
            "$gt" => self.relation(Relation::Gt, operand, at)?,
            "$gte" => self.relation(Relation::Gte, operand, at)?,
            "$exists" => match operand {
                Value::Bool(b) => Op::Exists(*b),
                other if self.strict => return Err(wrong_type(at, "a boolean", other)),
                other => Op::Exists(js::truthy(Some(other))),
            },
            "$in" => self.in_list(operand, at, false, false)?,
            "$nin" => self.in_list(operand, at, false, true)?,
            "$ini" => self.in_list(operand, at, true, false)?,
            "$nini" => self.in_list(operand, at, true, true)?,
            "$inGroup" => self.group(operand, at, false)?,
            "$notInGroup" => self.group(operand, at, true)?,
            "$not" => Op::Not(Box::new(self.test(operand, at, false)?)),
            "$size" => {
                if self.strict && !matches!(operand, Value::Number(_) | Value::Object(_)) {
                    return Err(wrong_type(at, "a number or an operator object", operand));
                }
                Op::Size(Box::new(self.test(operand, at, false)?))
            }
            "$elemMatch" => match operand {
                Value::Object(map) if is_operator_object(map) => {
                    Op::ElemMatch(ElemMatch::Value(Box::new(self.test(operand, at, false)?)))
                }
                Value::Object(_) => {
                    Op::ElemMatch(ElemMatch::Condition(Box::new(self.node(operand, at)?)))
                }
                other => return Err(wrong_type(at, "an object", other)),
            },
            "$all" | "$alli" => {
                let Value::Array(items) = operand else {
                    return Err(wrong_type(at, "an array", operand));
                };
                let fold = name == "$alli";
                let tests = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.test(item, &format!("{at}[{i}]"), fold))
                    .collect::<Result<Vec<_>>>()?;
                Op::All(tests.into_boxed_slice())
            }
            "$regex" | "$regexi" => {
                let Value::String(pattern) = operand else {
                    return Err(wrong_type(at, "a regular expression string", operand));
                };
                let re = RegexBuilder::new(pattern)
                    .case_insensitive(name == "$regexi")
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| {
                        err(
                            at,
                            ConditionErrorKind::InvalidRegex,
                            format!("invalid regular expression: {}", first_line(&e.to_string())),
                        )
                    })?;
                Op::Regex(re)
            }
            "$type" => match operand.as_str().and_then(JsType::parse) {
                Some(t) => Op::Type(t),
                None => {
                    return Err(err(
                        at,
                        ConditionErrorKind::WrongType,
                        "expected one of \"string\", \"number\", \"boolean\", \"object\", \
                         \"array\", \"null\"",
                    ))
                }
            },
            other => {
                return Err(err(
                    at,
                    ConditionErrorKind::UnknownOperator,
                    format!("unknown operator {other}"),
                ))
            }
        })
    }

    fn version(&self, op: VersionOp, operand: &Value, at: &str) -> Result<Op> {
        if self.strict && !matches!(operand, Value::String(_) | Value::Number(_)) {
            return Err(wrong_type(at, "a version string", operand));
        }
        Ok(Op::Version(
            op,
            version::padded_version_string(operand).into_boxed_str(),
        ))
    }

    fn relation(&self, rel: Relation, operand: &Value, at: &str) -> Result<Op> {
        if self.strict && !matches!(operand, Value::String(_) | Value::Number(_)) {
            return Err(wrong_type(at, "a string or a number", operand));
        }
        let prim = match Primitive::of(Some(operand)) {
            Primitive::Str(s) => Primitive::Str(std::borrow::Cow::Owned(s.into_owned())),
            Primitive::Num(n) => Primitive::Num(n),
        };
        Ok(match prim {
            Primitive::Num(n) => Op::RelNum(rel, n),
            other => Op::Rel(rel, other),
        })
    }

    fn in_list(&self, operand: &Value, at: &str, fold: bool, negate: bool) -> Result<Op> {
        let Value::Array(items) = operand else {
            return Err(wrong_type(at, "an array", operand));
        };
        if self.strict {
            if let Some((i, bad)) = items
                .iter()
                .enumerate()
                .find(|(_, v)| matches!(v, Value::Array(_) | Value::Object(_)))
            {
                return Err(wrong_type(
                    &format!("{at}[{i}]"),
                    "a string, number, boolean or null",
                    bad,
                ));
            }
        }
        if !fold && items.iter().all(Value::is_string) {
            let strs = items
                .iter()
                .filter_map(Value::as_str)
                .map(Into::into)
                .collect();
            return Ok(Op::InStr {
                strs: StrSet::new(strs),
                negate,
            });
        }
        Ok(Op::In {
            set: in_set(items, fold),
            negate,
        })
    }

    fn group(&self, operand: &Value, at: &str, negate: bool) -> Result<Op> {
        let Value::String(id) = operand else {
            return Err(wrong_type(at, "a saved group id string", operand));
        };
        let members = match self.groups.and_then(|g| g.get(id)) {
            Some(Value::Array(items)) => items.as_slice(),
            Some(other) => return Err(wrong_type(at, "a saved group that is an array", other)),
            None if self.strict => {
                return Err(err(
                    at,
                    ConditionErrorKind::UnknownSavedGroup,
                    format!("unknown saved group {id:?}"),
                ))
            }
            // GrowthBook: `savedGroups[id] || []`.
            None => &[],
        };
        Ok(Op::In {
            set: in_set(members, false),
            negate,
        })
    }
}

fn never_test() -> Test {
    Test::Ops(Box::new([Op::Never]))
}

fn first_line(s: &str) -> String {
    // The regex crate's messages span several lines with a caret diagram;
    // keep them readable in one log line.
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn path(key: &str) -> Path {
    let mut parts = key.split('.');
    let first = parts.next().unwrap_or("").into();
    Path {
        first,
        rest: parts.map(Into::into).collect(),
        slot: None,
    }
}

fn in_set(items: &[Value], fold: bool) -> InSet {
    let mut strs = Vec::new();
    let mut nums = Vec::new();
    let (mut null, mut truth, mut falsity) = (false, false, false);
    for item in items {
        match item {
            Value::Null => null = true,
            Value::Bool(true) => truth = true,
            Value::Bool(false) => falsity = true,
            Value::Number(n) => nums.push(js::number_f64(n)),
            Value::String(s) if fold => strs.push(s.to_lowercase().into_boxed_str()),
            Value::String(s) => strs.push(s.as_str().into()),
            // Arrays and objects are distinct JS objects: `includes` never
            // finds them.
            Value::Array(_) | Value::Object(_) => {}
        }
    }
    InSet {
        strs: StrSet::new(strs),
        nums: nums.into_boxed_slice(),
        null,
        truth,
        falsity,
        fold,
    }
}
