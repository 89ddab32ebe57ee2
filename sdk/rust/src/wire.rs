//! Writing assignments as JSON from bytes prepared once per ruleset: a server
//! answering for 100 experiments would otherwise serialise the same keys and
//! payloads on every call. The output is byte for byte what `serde_json` writes.

use crate::assign::Assignment;
use crate::compiled::CompiledRuleset;
use crate::ruleset::ExperimentRule;

impl CompiledRuleset {
    /// Appends `assignments` to `out` as a JSON array. Assignments this ruleset
    /// made are written from prepared bytes; others are serialised.
    pub fn write_assignments(&self, assignments: &[Assignment<'_>], out: &mut Vec<u8>) {
        out.push(b'[');
        for (n, assignment) in assignments.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            match self.prefix_of(assignment) {
                Some(prefix) => {
                    out.extend_from_slice(prefix);
                    out.extend_from_slice(if assignment.in_experiment {
                        b"true"
                    } else {
                        b"false"
                    });
                    out.extend_from_slice(b",\"reason\":\"");
                    out.extend_from_slice(assignment.reason.as_str().as_bytes());
                    out.extend_from_slice(b"\"}");
                }
                None => {
                    // Writing into a Vec cannot fail.
                    let _ = serde_json::to_writer(&mut *out, assignment);
                }
            }
        }
        out.push(b']');
    }

    /// The prepared bytes of `assignment`, if this ruleset made it.
    fn prefix_of(&self, assignment: &Assignment<'_>) -> Option<&[u8]> {
        let compiled = self.rules.get(assignment.at.rule)?;
        let rule = &compiled.rule;
        let variant = rule.variants.get(assignment.at.variant)?;
        let made_here = std::ptr::eq(rule.key.as_str(), assignment.experiment)
            && std::ptr::eq(&variant.value, assignment.value);
        if !made_here {
            return None;
        }
        compiled
            .assignment_prefixes
            .get_or_init(|| prefixes(rule))
            .get(assignment.at.variant)
            .map(|p| &**p)
    }
}

/// `{"experiment":…,"variant":…,"value":…,"in_experiment":` for every variant
/// of the rule, in the field order of [`Assignment`]'s `Serialize`.
fn prefixes(rule: &ExperimentRule) -> Box<[Box<[u8]>]> {
    rule.variants
        .iter()
        .map(|variant| {
            let mut prefix = b"{\"experiment\":".to_vec();
            let _ = serde_json::to_writer(&mut prefix, &rule.key);
            prefix.extend_from_slice(b",\"variant\":");
            let _ = serde_json::to_writer(&mut prefix, &variant.key);
            prefix.extend_from_slice(b",\"value\":");
            let _ = serde_json::to_writer(&mut prefix, &variant.value);
            prefix.extend_from_slice(b",\"in_experiment\":");
            prefix.into_boxed_slice()
        })
        .collect()
}
