//! Limits on what a task may carry, checked where a task enters the system (the service's
//! submit) and again where it is run (the endpoint agent), so that no single task can wedge a
//! part of Lifeline that has to parse it.

/// Deepest nesting of arrays and objects allowed in a task's `args` or `kwargs`, counting the
/// outer array or object as one. Parsers everywhere Lifeline runs (serde_json's 128 levels,
/// Python's recursion limit) handle far more than this, with room for the envelope around it.
pub const MAX_ARGUMENT_DEPTH: usize = 64;

/// The deepest nesting of arrays and objects in a JSON text, found without recursion (so a
/// hostile text cannot exhaust the stack) and without building values. Brackets inside strings
/// do not count; the text is not otherwise checked.
pub fn json_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::json_depth;

    #[test]
    fn depth_counts_containers_outside_strings() {
        assert_eq!(json_depth("1"), 0);
        assert_eq!(json_depth("[]"), 1);
        assert_eq!(json_depth(r#"[1, {"a": [2]}, []]"#), 3);
        assert_eq!(json_depth(r#"["[[[[", "\"]]]{{{"]"#), 1);
        assert_eq!(
            json_depth(&format!("{}{}", "[".repeat(200), "]".repeat(200))),
            200
        );
    }
}
