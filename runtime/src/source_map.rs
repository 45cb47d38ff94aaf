//! Positions in the code a user wrote, not in the code QuickJS compiled.
//! The `@` transform keeps lines but lengthens a line wherever it rewrites
//! a reference (`@me.x` → `__vt.ref("me","x",null).value`), so QuickJS's
//! columns after a reference are off. A [`ColumnMap`] records each rewrite;
//! compiled bytecode carries it in a trailer the guest never sees
//! ([`attach`], [`split`]), and a thrown error's stack frames in that
//! module are mapped back ([`remap_stack`]). Syntax errors are placed by a
//! real ECMAScript parser (QuickJS reports the lexer's position, often
//! past the offending token) and mapped back the same way
//! ([`syntax_error_position`]).

/// One rewrite on one line, in 1-based character columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rewrite {
    /// The line (the same before and after).
    pub(crate) line: u32,
    /// Where the rewritten text starts in the compiled line.
    pub(crate) new_start: u32,
    /// Where it ends (exclusive) in the compiled line.
    pub(crate) new_end: u32,
    /// Where the original text started.
    pub(crate) old_start: u32,
    /// Where it ended (exclusive).
    pub(crate) old_end: u32,
}

/// Every rewrite of one module, in source order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ColumnMap {
    pub(crate) rewrites: Vec<Rewrite>,
}

impl ColumnMap {
    /// The column in the user's code of `column` on `line` of the compiled
    /// code (inside a rewritten reference: the reference's start).
    pub(crate) fn original_column(&self, line: u32, column: u32) -> u32 {
        let mut shift: i64 = 0;
        for rewrite in self.rewrites.iter().filter(|r| r.line == line) {
            if column < rewrite.new_start {
                break;
            }
            if column < rewrite.new_end {
                return rewrite.old_start;
            }
            shift += i64::from(rewrite.new_end - rewrite.new_start)
                - i64::from(rewrite.old_end - rewrite.old_start);
        }
        (i64::from(column) - shift).max(1) as u32
    }
}

/// Marks bytecode that carries a map: `[bytecode][map][u32 map length][MAGIC]`.
const MAGIC: &[u8; 4] = b"VBM1";

/// `bytecode` with `map` (and the module's file name) in a trailer;
/// unchanged when nothing was rewritten.
pub(crate) fn attach(mut bytecode: Vec<u8>, file: &str, map: &ColumnMap) -> Vec<u8> {
    if map.rewrites.is_empty() {
        return bytecode;
    }
    let start = bytecode.len();
    bytecode.extend_from_slice(&(file.len() as u32).to_le_bytes());
    bytecode.extend_from_slice(file.as_bytes());
    for r in &map.rewrites {
        for n in [r.line, r.new_start, r.new_end, r.old_start, r.old_end] {
            bytecode.extend_from_slice(&n.to_le_bytes());
        }
    }
    let length = (bytecode.len() - start) as u32;
    bytecode.extend_from_slice(&length.to_le_bytes());
    bytecode.extend_from_slice(MAGIC);
    bytecode
}

/// The bytecode proper, and the trailer's bytes when there is one.
pub(crate) fn split(bytecode: &[u8]) -> (&[u8], Option<&[u8]>) {
    let Some(rest) = bytecode.strip_suffix(MAGIC) else {
        return (bytecode, None);
    };
    let Some((body, length)) = rest.split_last_chunk::<4>() else {
        return (bytecode, None);
    };
    let length = u32::from_le_bytes(*length) as usize;
    match body.len().checked_sub(length) {
        Some(start) => (&body[..start], Some(&body[start..])),
        None => (bytecode, None),
    }
}

/// Reads a trailer: the module's file name and its map.
fn read_trailer(trailer: &[u8]) -> Option<(&str, ColumnMap)> {
    let (length, rest) = trailer.split_first_chunk::<4>()?;
    let length = u32::from_le_bytes(*length) as usize;
    let file = std::str::from_utf8(rest.get(..length)?).ok()?;
    let numbers: Vec<u32> = rest[length..]
        .chunks_exact(4)
        .map(|n| u32::from_le_bytes(n.try_into().expect("chunks of 4")))
        .collect();
    let rewrites = numbers
        .chunks_exact(5)
        .map(|n| Rewrite {
            line: n[0],
            new_start: n[1],
            new_end: n[2],
            old_start: n[3],
            old_end: n[4],
        })
        .collect();
    Some((file, ColumnMap { rewrites }))
}

/// `stack` with the positions of frames in the module of `bytecode` moved
/// back to the user's columns (unchanged when the module has no map).
pub(crate) fn remap_stack(bytecode: &[u8], stack: &str) -> Option<String> {
    let (file, map) = read_trailer(split(bytecode).1?)?;
    let mut out = String::with_capacity(stack.len());
    for frame in stack.split_inclusive('\n') {
        out.push_str(&remap_frame(frame, file, &map).unwrap_or_else(|| frame.to_string()));
    }
    Some(out)
}

/// `result` with a thrown error's stack remapped for `bytecode`'s module.
pub(crate) fn remap_thrown<E>(
    bytecode: &[u8],
    mut result: Result<Result<Vec<u8>, crate::error::JsError>, E>,
) -> Result<Result<Vec<u8>, crate::error::JsError>, E> {
    if let Ok(Err(thrown)) = &mut result {
        if let Some(stack) = remap_stack(bytecode, &thrown.stack) {
            thrown.stack = stack;
        }
    }
    result
}

/// One frame, `    at f (file:3:14)` or `    at file:3:14`, remapped.
fn remap_frame(frame: &str, file: &str, map: &ColumnMap) -> Option<String> {
    let at = frame.find(&format!("{file}:"))?;
    let start = at + file.len() + 1;
    let end = start
        + frame[start..]
            .find(|c: char| !(c.is_ascii_digit() || c == ':'))
            .unwrap_or(frame.len() - start);
    let (line, column) = frame[start..end].split_once(':')?;
    let line: u32 = line.parse().ok()?;
    let column: u32 = column.parse().ok()?;
    let column = map.original_column(line, column);
    Some(format!(
        "{}{line}:{column}{}",
        &frame[..start],
        &frame[end..]
    ))
}

/// Where the first syntax error of `compiled` (the transformed module) is,
/// as an ECMAScript parser places it, in the user's line and column.
/// `None` when the parser finds no error (QuickJS's position stands).
pub(crate) fn syntax_error_position(compiled: &str, map: &ColumnMap) -> Option<(u32, u32)> {
    let allocator = oxc_allocator::Allocator::default();
    let parsed = oxc_parser::Parser::new(&allocator, compiled, oxc_span::SourceType::mjs()).parse();
    let error = parsed.diagnostics.first()?;
    let offset = (error.labels.first()?.offset() as usize).min(compiled.len());
    let before = &compiled[..offset];
    let line = before.matches('\n').count() as u32 + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
    Some((line, map.original_column(line, column)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> ColumnMap {
        // `@me.x` (cols 5..10) became 27 columns wide on line 2.
        ColumnMap {
            rewrites: vec![Rewrite {
                line: 2,
                new_start: 5,
                new_end: 32,
                old_start: 5,
                old_end: 10,
            }],
        }
    }

    #[test]
    fn columns_after_a_rewrite_move_back() {
        let map = map();
        assert_eq!(map.original_column(2, 3), 3);
        assert_eq!(
            map.original_column(2, 20),
            5,
            "inside the rewrite: its start"
        );
        assert_eq!(map.original_column(2, 35), 13);
        assert_eq!(map.original_column(1, 35), 35, "other lines are untouched");
    }

    #[test]
    fn the_trailer_round_trips_and_remaps_stacks() {
        let bytecode = attach(vec![1, 2, 3], "bob/f.js", &map());
        assert_eq!(split(&bytecode).0, [1, 2, 3]);
        let stack = "    at f (bob/f.js:2:35)\n    at bob/f.js:1:4\n    at g (other.js:2:35)\n";
        assert_eq!(
            remap_stack(&bytecode, stack).unwrap(),
            "    at f (bob/f.js:2:13)\n    at bob/f.js:1:4\n    at g (other.js:2:35)\n"
        );
        assert_eq!(split(&[9, 9]).0, [9, 9]);
        assert!(remap_stack(&[1, 2, 3], stack).is_none());
        assert_eq!(attach(vec![7], "x.js", &ColumnMap::default()), [7]);
    }

    #[test]
    fn a_syntax_error_is_placed_at_its_token() {
        let none = ColumnMap::default();
        let code = "export function se(x) {\n  const y = 1;\n  return x +;\n}\n";
        assert_eq!(syntax_error_position(code, &none), Some((3, 13)));
        assert_eq!(
            syntax_error_position("export function f( {", &none),
            Some((1, 21))
        );
        assert_eq!(syntax_error_position("export const ok = 1;", &none), None);
    }
}
