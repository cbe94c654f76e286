//! Checks a Python function's file before it is registered: that it compiles, and that it defines
//! the entry point. A mistake is then a usage error naming the file and the line, rather than a
//! task that fails on the endpoint minutes later. The check compiles the source with this
//! machine's `python3` and reads its syntax tree; it never runs the user's code.

use std::process::Stdio;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::client::{CliError, CliResult};

/// What `python3 -c CHECK FILE ENTRY` runs, with the source on stdin. It compiles the source
/// (which finds every syntax error, including those `ast.parse` lets through, such as `return`
/// outside a function) and then looks for a top-level binding of the entry point: a `def`, a
/// `class`, an assignment or an import, also inside top-level `if`, `try`, `with` and loops.
/// It prints one JSON line.
const CHECK: &str = r#"
import ast, json, sys

filename, entry = sys.argv[1], sys.argv[2]
source = sys.stdin.buffer.read().decode("utf-8")
try:
    compile(source, filename, "exec", dont_inherit=True)
except SyntaxError as error:
    print(json.dumps({"syntax_error": error.msg, "line": error.lineno, "text": (error.text or "").strip()}))
    sys.exit(0)


def bound(statements):
    for node in statements:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node.name, True
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                yield (alias.asname or alias.name).split(".")[0], False
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        yield name.id, False
        for field in ("body", "orelse", "finalbody", "handlers"):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                break
            inner = getattr(node, field, None)
            if isinstance(inner, list):
                yield from bound(inner)


names = list(bound(ast.parse(source, filename).body))
found = any(name == entry for name, _ in names)
functions = sorted({name for name, is_def in names if is_def and not name.startswith("_")})
print(json.dumps({"found": found, "functions": functions}))
"#;

/// What the check printed.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Verdict {
    SyntaxError {
        syntax_error: String,
        line: Option<u64>,
        text: String,
    },
    Names {
        found: bool,
        functions: Vec<String>,
    },
}

/// Refuses `source` (read from `file`) if it does not compile or does not define `entry`.
/// Without a `python3` here the file cannot be checked: a note says so and the file goes
/// unchecked, since the endpoint's Python is what runs it.
pub(crate) async fn check(file: &str, source: &str, entry: &str) -> CliResult<()> {
    let verdict = match run(file, source, entry).await {
        Ok(verdict) => verdict,
        Err(why) => {
            eprintln!("note: {file} was not checked before submitting ({why})");
            return Ok(());
        }
    };
    match verdict {
        Verdict::SyntaxError {
            syntax_error,
            line,
            text,
        } => {
            let at = line.map(|n| format!(", line {n}")).unwrap_or_default();
            let shown = if text.is_empty() {
                String::new()
            } else {
                format!(" in `{text}`")
            };
            Err(CliError::usage(format!(
                "{file}{at}: {syntax_error}{shown}"
            )))
        }
        Verdict::Names { found: true, .. } => Ok(()),
        Verdict::Names {
            found: false,
            functions,
        } => {
            let defined = if functions.is_empty() {
                "it defines no function".to_owned()
            } else {
                format!("it defines {}", functions.join(", "))
            };
            Err(CliError::usage(format!(
                "{file} has no function named {entry:?}; {defined}"
            )))
        }
    }
}

/// Runs the check; `Err` says why it could not run.
async fn run(file: &str, source: &str, entry: &str) -> Result<Verdict, String> {
    let mut child = tokio::process::Command::new("python3")
        .args(["-I", "-c", CHECK, file, entry])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "python3 is not installed here".to_owned(),
            _ => format!("cannot run python3: {e}"),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(source.as_bytes())
            .await
            .map_err(|e| format!("cannot hand the source to python3: {e}"))?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| format!("python3 did not finish: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line).map_err(|_| {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let why = stderr.lines().last().unwrap_or("no answer");
        format!("python3 could not check it: {why}")
    })
}
