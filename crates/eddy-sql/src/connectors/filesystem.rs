//! The `filesystem` connector: a file of JSON lines, one object per row.
//! As a source it reads the file once (bounded), failing the job at the
//! first line that is not a JSON object of the table's columns, with the
//! line number; as a sink it writes one object per line (under
//! exactly-once, one file per snapshot epoch, see the pipeline's file
//! sink).

use super::Options;
use crate::error::{Pos, SqlError};
use std::path::PathBuf;

/// A `filesystem` table's options.
#[derive(Debug, Clone)]
pub struct FileTable {
    /// `'path'`: the file.
    pub path: PathBuf,
}

impl FileTable {
    pub(crate) fn from_options(opts: &mut Options, pos: Pos) -> Result<FileTable, SqlError> {
        let Some((path, _)) = opts.take("path") else {
            return Err(SqlError::plan(
                pos,
                "connector 'filesystem' needs 'path' = '/the/file.jsonl'",
            ));
        };
        super::json::check_format(opts, "filesystem")?;
        Ok(FileTable { path: path.into() })
    }
}

use super::json::RowDecoder;
use crate::catalog::Column;
use crate::types::Row;
use eddy::processor::ProcessorContext;
use eddy::source::SourceBuilder;
use eddy::{ProcessorError, Source};
use std::io::BufRead;
use std::sync::Arc;

/// Lines one fill call reads: about one batch of the queues.
const LINES_PER_FILL: usize = 1024;

/// What a file source instance holds.
struct Reading {
    reader: std::io::BufReader<std::fs::File>,
    line_no: u64,
    line: String,
}

impl FileTable {
    /// The source of the file's rows.
    pub fn source(&self, columns: Arc<[Column]>) -> impl Source<Out = Row> {
        let path = self.path.clone();
        let path2 = self.path.clone();
        let decoder = RowDecoder::new(columns);
        SourceBuilder::batch(
            format!("file:{}", self.path.display()),
            move |_ctx: &ProcessorContext| {
                let file = std::fs::File::open(&path).map_err(|e| {
                    ProcessorError::new(format!(
                        "cannot open '{}': {e}; check the table's 'path'",
                        path.display()
                    ))
                })?;
                Ok(Reading {
                    reader: std::io::BufReader::new(file),
                    line_no: 0,
                    line: String::new(),
                })
            },
        )
        .fill(move |r: &mut Reading, buf| {
            for _ in 0..LINES_PER_FILL {
                r.line.clear();
                let n = r.reader.read_line(&mut r.line).map_err(|e| {
                    ProcessorError::new(format!("reading '{}' failed: {e}", path2.display()))
                })?;
                if n == 0 {
                    buf.close();
                    return Ok(());
                }
                r.line_no += 1;
                let text = r.line.trim();
                if text.is_empty() {
                    continue;
                }
                let row = decoder.decode(text.as_bytes()).map_err(|e| {
                    ProcessorError::new(format!("{}:{}: {e}", path2.display(), r.line_no))
                })?;
                buf.add(row);
            }
            Ok(())
        })
        .blocking()
        .build()
    }
}
