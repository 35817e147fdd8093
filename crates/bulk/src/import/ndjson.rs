//! Reading NDJSON: lines as raw bytes (UTF-8 and JSON are checked by the workers, in parallel),
//! with resume support and truncated-gzip detection.

use std::io::{BufRead, BufReader, Read};

use super::checkpoint::Checkpoint;
use super::pipeline::{Raw, RawItem};

/// Lines longer than this are reported and skipped instead of being held in memory whole.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// Streams the lines of `reader` (positioned at `start_offset` of the decompressed content,
/// which is the checkpoint's offset for a seekable file and 0 otherwise) to `emit`. Lines up to
/// the checkpoint's position are skipped. Returns `false` when `emit` asked to stop.
pub fn read_lines(
    reader: Box<dyn Read + Send>,
    file: usize,
    checkpoint: Checkpoint,
    start_offset: u64,
    emit: &mut dyn FnMut(RawItem) -> bool,
) -> bool {
    let skip_until = checkpoint.pos();
    // When the reader was seeked past committed lines, numbering continues after them.
    let mut line_no = if start_offset > 0 { skip_until } else { 0 };
    let mut offset = start_offset;
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf);
        let n = match read {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                // A truncated or corrupt gzip stream: everything before was delivered; the
                // partial line is dropped.
                return emit(RawItem {
                    file,
                    pos: line_no + 1,
                    offset,
                    raw: Raw::Error(format!(
                        "input ends or is corrupt after line {line_no}: {e}"
                    )),
                });
            }
        };
        offset += n as u64;
        let complete = buf.last() == Some(&b'\n');
        if !complete && n > MAX_LINE_BYTES {
            // Skip the rest of the overlong line.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                match (&mut reader).take(1 << 20).read_until(b'\n', &mut rest) {
                    Ok(0) => break,
                    Ok(m) => {
                        offset += m as u64;
                        if rest.last() == Some(&b'\n') {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            line_no += 1;
            if line_no > skip_until
                && !emit(RawItem {
                    file,
                    pos: line_no,
                    offset,
                    raw: Raw::Error(format!("line longer than {MAX_LINE_BYTES} bytes")),
                })
            {
                return false;
            }
            continue;
        }
        line_no += 1;
        if line_no <= skip_until {
            continue;
        }
        let line = trim(&buf);
        if line.is_empty() {
            continue;
        }
        if !emit(RawItem {
            file,
            pos: line_no,
            offset,
            raw: Raw::Line(line.to_vec()),
        }) {
            return false;
        }
    }
    emit(RawItem {
        file,
        pos: line_no,
        offset,
        raw: Raw::FileEnd,
    })
}

fn trim(mut line: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = line {
        if first.is_ascii_whitespace() {
            line = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = line {
        if last.is_ascii_whitespace() {
            line = rest;
        } else {
            break;
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &'static [u8], checkpoint: Checkpoint) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        read_lines(Box::new(input), 0, checkpoint, 0, &mut |item| {
            let text = match item.raw {
                Raw::Line(l) => String::from_utf8_lossy(&l).into_owned(),
                Raw::FileEnd => "<end>".into(),
                Raw::Error(e) => format!("<error {e}>"),
                Raw::Resource { .. } => "<resource>".into(),
            };
            out.push((item.pos, text));
            true
        });
        out
    }

    #[test]
    fn numbers_lines_skips_blanks_and_committed() {
        let input = b"{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":3}";
        assert_eq!(
            lines(input, Checkpoint::Start),
            vec![
                (1, "{\"a\":1}".into()),
                (4, "{\"b\":2}".into()),
                (5, "{\"c\":3}".into()),
                (5, "<end>".into())
            ]
        );
        assert_eq!(
            lines(input, Checkpoint::At { pos: 4, offset: 0 }),
            vec![(5, "{\"c\":3}".into()), (5, "<end>".into())]
        );
    }
}
