//! Candles from Parquet, through the `parquet` crate's record API: the file's schema is looked
//! at once, the columns used are found by name and their types checked, and the rows are then
//! read row group by row group, projected to those columns (others cost nothing), so memory
//! stays that of a page, whatever the file's length.
//!
//! Columns (names matched without regard to case; the first of each pair found is used):
//! - `ts_ms` or `ts`: the bar's opening time: INT64 milliseconds, a TIMESTAMP of any unit, or
//!   INT96 (older Spark/Hive timestamps);
//! - `open high low close volume` or `o h l c vol`: DOUBLE or FLOAT, an integer, a DECIMAL, or
//!   decimal text (UTF8 strings, as OKX writes numbers);
//! - `confirm` (optional): 0/1 as an integer, a boolean or text; a 0 is refused as in OKX's CSV.
//!
//! The types are checked before any row is read: the record API panics on a conversion it does
//! not know, so nothing it would refuse that way is ever handed to it.

use crate::DataError;
use crate::candles::{Bar, RawBar};
use crate::input::ParquetSource;
use parquet::basic::{Compression, ConvertedType, LogicalType, TimeUnit, Type as Physical};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::reader::RowIter;
use parquet::record::{Field, Row};
use parquet::schema::types::{Type, TypePtr};
use std::path::Path;

/// The roles, in the order a projected row holds them.
const ROLES: [(&str, &[&str]); 6] = [
    ("timestamp", &["ts_ms", "ts"]),
    ("open", &["open", "o"]),
    ("high", &["high", "h"]),
    ("low", &["low", "l"]),
    ("close", &["close", "c"]),
    ("volume", &["volume", "vol"]),
];

/// How a timestamp column's values become milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Millis,
    Micros,
    Nanos,
}

/// The rows of a candle Parquet file.
pub(crate) struct CandleRows {
    rows: RowIter<'static>,
    unit: Unit,
    confirm: bool,
    row: u64,
}

/// The physical and converted type of a column, as the file declares them.
fn describe(t: &Type) -> String {
    let info = t.get_basic_info();
    match (info.logical_type_ref(), info.converted_type()) {
        (Some(logical), _) => format!("{} ({logical:?})", t.get_physical_type()),
        (None, ConvertedType::NONE) => t.get_physical_type().to_string(),
        (None, converted) => format!("{} ({converted})", t.get_physical_type()),
    }
}

fn timestamp_unit(t: &Type) -> Option<Unit> {
    let info = t.get_basic_info();
    if let Some(LogicalType::Timestamp(ts)) = info.logical_type_ref() {
        return Some(match ts.unit {
            TimeUnit::MILLIS => Unit::Millis,
            TimeUnit::MICROS => Unit::Micros,
            TimeUnit::NANOS => Unit::Nanos,
        });
    }
    match (t.get_physical_type(), info.converted_type()) {
        // The record API turns INT96 into milliseconds itself.
        (Physical::INT96, _) => Some(Unit::Millis),
        (Physical::INT64, ConvertedType::NONE | ConvertedType::INT_64 | ConvertedType::TIMESTAMP_MILLIS) => {
            Some(Unit::Millis)
        }
        (Physical::INT64, ConvertedType::TIMESTAMP_MICROS) => Some(Unit::Micros),
        _ => None,
    }
}

fn is_number(t: &Type) -> bool {
    use ConvertedType as C;
    matches!(
        (t.get_physical_type(), t.get_basic_info().converted_type()),
        (Physical::DOUBLE | Physical::FLOAT, _)
            | (
                Physical::INT32,
                C::NONE | C::INT_8 | C::INT_16 | C::INT_32 | C::UINT_8 | C::UINT_16 | C::UINT_32 | C::DECIMAL
            )
            | (Physical::INT64, C::NONE | C::INT_64 | C::UINT_64 | C::DECIMAL)
            | (Physical::BYTE_ARRAY, C::UTF8 | C::DECIMAL)
            | (Physical::FIXED_LEN_BYTE_ARRAY, C::DECIMAL)
    )
}

fn is_flag(t: &Type) -> bool {
    use ConvertedType as C;
    matches!(
        (t.get_physical_type(), t.get_basic_info().converted_type()),
        (Physical::BOOLEAN, _)
            | (Physical::INT32, C::NONE | C::INT_8 | C::INT_16 | C::INT_32)
            | (Physical::INT64, C::NONE | C::INT_64)
            | (Physical::BYTE_ARRAY, C::UTF8)
    )
}

/// A DECIMAL's value: its unscaled big-endian two's complement bytes over 10^scale, rounded
/// once (through the decimal text), as the text readers round.
fn decimal(d: &parquet::data_type::Decimal) -> Result<f64, String> {
    let bytes = d.data();
    if bytes.len() > 16 {
        return Err("a DECIMAL wider than 128 bits".into());
    }
    let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) { 0xFF } else { 0 };
    let mut wide = [fill; 16];
    wide[16 - bytes.len()..].copy_from_slice(bytes);
    let unscaled = i128::from_be_bytes(wide);
    format!("{unscaled}e{}", -d.scale()).parse::<f64>().map_err(|e| format!("a DECIMAL that is not a number: {e}"))
}

fn number(field: &Field) -> Result<f64, String> {
    Ok(match field {
        Field::Double(v) => *v,
        Field::Float(v) => f64::from(*v),
        Field::Byte(v) => f64::from(*v),
        Field::Short(v) => f64::from(*v),
        Field::Int(v) => f64::from(*v),
        Field::Long(v) => *v as f64,
        Field::UByte(v) => f64::from(*v),
        Field::UShort(v) => f64::from(*v),
        Field::UInt(v) => f64::from(*v),
        Field::ULong(v) => *v as f64,
        Field::Decimal(d) => decimal(d)?,
        Field::Str(s) => s.trim().parse::<f64>().map_err(|_| format!("{} is not a number", crate::quoted(s)))?,
        Field::Null => return Err("empty (null)".into()),
        other => return Err(format!("{other} is not a number")),
    })
}

/// The longest reason quoted from the parquet crate (a panic's message, its error's text).
const MAX_REASON: usize = 160;

/// Text from the parquet crate as one short line of a [`DataError`]: its first line (an
/// assertion's message goes on with its operands), control characters escaped, cut at
/// [`MAX_REASON`] characters.
fn one_line(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    let mut out: String = first.chars().take(MAX_REASON).flat_map(char::escape_debug).collect();
    if first.chars().nth(MAX_REASON).is_some() || text.lines().nth(1).is_some() {
        out.push('…');
    }
    out
}

thread_local! {
    /// Set while this thread is inside [`contained`]: its panics are then caught and reported
    /// as errors, so the hook prints nothing for them.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs, once per process, a panic hook that says nothing for a panic [`contained`] is
/// about to catch, and hands every other panic to the hook that was there before. Swapping the
/// hook around each call instead would race with other threads reading files (a backtest sweep
/// reads on every core) and could leave a silent hook behind; this one is decided per thread.
/// A hook set by the program after this replaces it: the panic's message is then printed
/// again, and still contained.
fn quiet_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs a call into the parquet crate, a panic in it made an error: the crate still asserts
/// instead of refusing on some damaged pages (apache/arrow-rs#7102 and its kin), and a damaged
/// file must not take down the process reading it, nor print a panic's message and backtrace
/// on its way to being one line of error. The stream ends at that error, so nothing the panic
/// left half done is used again.
fn contained<T>(call: impl FnOnce() -> T) -> Result<T, String> {
    quiet_hook();
    let was = QUIET.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
    QUIET.with(|q| q.set(was));
    result.map_err(|panic| {
        let text = panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str));
        format!("the parquet crate failed on it ({})", one_line(text.unwrap_or("no message")))
    })
}

/// `FILE: not a readable Parquet file: REASON`; the reason is one short line already.
fn unreadable(path: &Path, why: &str) -> DataError {
    DataError::file(path, format!("not a readable Parquet file: {why}"))
}

impl CandleRows {
    /// Reads the footer and checks the columns; no row is read yet.
    pub(crate) fn open(path: &Path, source: ParquetSource) -> Result<Self, DataError> {
        let panicked = |why: String| unreadable(path, &format!("damaged: {why}"));
        let refused = |e: parquet::errors::ParquetError| unreadable(path, &one_line(&e.to_string()));
        let (reader, length): (Box<dyn FileReader>, u64) = match source {
            ParquetSource::File(file) => {
                let length = file.metadata().map_err(|e| DataError::file(path, format!("cannot read: {e}")))?.len();
                let reader = contained(|| SerializedFileReader::new(file)).map_err(panicked)?;
                (Box::new(reader.map_err(refused)?), length)
            }
            ParquetSource::Bytes(bytes) => {
                let length = bytes.len() as u64;
                let reader = contained(|| SerializedFileReader::new(bytes)).map_err(panicked)?;
                (Box::new(reader.map_err(refused)?), length)
            }
        };
        let metadata = reader.metadata();
        let schema = metadata.file_metadata().schema();
        let fields = schema.get_fields();
        let find = |names: &[&str]| -> Option<&TypePtr> {
            names.iter().find_map(|n| fields.iter().find(|f| f.name().eq_ignore_ascii_case(n)))
        };
        let listed = || crate::quoted(&fields.iter().map(|f| f.name()).collect::<Vec<_>>().join(", "));
        let mut columns: Vec<TypePtr> = Vec::with_capacity(7);
        for (role, names) in ROLES {
            let Some(column) = find(names) else {
                return Err(DataError::file(
                    path,
                    format!("no {role} column (named {}); the file has: {}", names.join(" or "), listed()),
                ));
            };
            columns.push(column.clone());
        }
        let confirm = find(&["confirm"]).cloned();
        columns.extend(confirm.clone());
        for (i, column) in columns.iter().enumerate() {
            let name = column.name();
            let repeated = column.get_basic_info().has_repetition()
                && column.get_basic_info().repetition() == parquet::basic::Repetition::REPEATED;
            if !column.is_primitive() || repeated {
                return Err(DataError::file(path, format!("column {name} must hold one value per row")));
            }
            let (fits, want) = match i {
                0 => (timestamp_unit(column).is_some(), "INT64 milliseconds or a TIMESTAMP"),
                1..=5 => (is_number(column), "a floating-point, integer or DECIMAL number, or decimal text"),
                _ => (is_flag(column), "0/1 as an integer, boolean or text"),
            };
            if !fits {
                return Err(DataError::file(path, format!("column {name} is {}; expected {want}", describe(column))));
            }
        }
        // Column chunks are checked before reading: their codec, and where the footer says they
        // are (the crate asserts on a negative offset or size instead of refusing it, and a
        // damaged footer is a file a reader meets).
        for (i, group) in metadata.row_groups().iter().enumerate() {
            if group.num_rows() < 0 {
                return Err(DataError::file(path, format!("damaged: row group {i} has {} rows", group.num_rows())));
            }
            for chunk in group.columns() {
                let used = columns.iter().any(|c| chunk.column_path().parts() == [c.name().to_string()]);
                if !used {
                    continue;
                }
                let start = chunk.dictionary_page_offset().unwrap_or(chunk.data_page_offset());
                let (start, size) = (u64::try_from(start), u64::try_from(chunk.compressed_size()));
                if !matches!((start, size), (Ok(start), Ok(size)) if start.checked_add(size).is_some_and(|end| end <= length))
                {
                    return Err(DataError::file(
                        path,
                        format!("damaged: column {} of row group {i} lies outside the file", chunk.column_path()),
                    ));
                }
                if !matches!(chunk.compression(), Compression::UNCOMPRESSED | Compression::SNAPPY) {
                    return Err(DataError::file(
                        path,
                        format!(
                            "column {} is compressed with {}; this build reads Snappy or uncompressed Parquet \
                             (pandas/pyarrow: compression=\"snappy\"; polars: compression=\"snappy\")",
                            chunk.column_path(),
                            chunk.compression()
                        ),
                    ));
                }
            }
        }
        let unit = timestamp_unit(&columns[0]).unwrap_or(Unit::Millis);
        let projection = Type::group_type_builder(schema.name())
            .with_fields(columns)
            .build()
            .map_err(|e| DataError::file(path, format!("cannot select the candle columns: {e}")))?;
        let rows = RowIter::from_file_into(reader)
            .project(Some(projection))
            .map_err(|e| DataError::file(path, format!("cannot select the candle columns: {e}")))?;
        Ok(Self { rows, unit, confirm: confirm.is_some(), row: 0 })
    }

    /// The next row, unchecked beyond its types.
    pub(crate) fn next(&mut self, path: &Path) -> Option<Result<RawBar, DataError>> {
        let line = self.row + 1;
        let row = match contained(|| self.rows.next()) {
            Ok(row) => row?,
            // Damaged where the row would be, not a row to name.
            Err(why) => return Some(Err(unreadable(path, &format!("damaged at row {line}: {why}")))),
        };
        self.row = line;
        Some(
            // The values are judged below: an error from the crate is the file's pages.
            row.map_err(|e| unreadable(path, &format!("damaged at row {line}: {}", one_line(&e.to_string()))))
                .and_then(|row| self.bar(&row).map_err(|why| DataError::at(path, line, format!("row {line}: {why}"))))
                .map(|(bar, closed)| RawBar { line, bar, closed }),
        )
    }

    fn bar(&self, row: &Row) -> Result<(Bar, bool), String> {
        let fields: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
        let get = |i: usize| fields.get(i).copied().unwrap_or(&Field::Null);
        let value = |i: usize| number(get(i)).map_err(|why| format!("{}: {why}", ROLES[i].0));
        let ts_ms = match (get(0), self.unit) {
            (Field::Long(v) | Field::TimestampMillis(v), Unit::Millis) => *v,
            (Field::Long(v) | Field::TimestampMicros(v), Unit::Micros) => v.div_euclid(1_000),
            (Field::Long(v), Unit::Nanos) => v.div_euclid(1_000_000),
            (Field::TimestampMillis(v), _) => *v,
            (Field::TimestampMicros(v), _) => v.div_euclid(1_000),
            (Field::Null, _) => return Err("timestamp: empty (null)".into()),
            (other, _) => return Err(format!("timestamp: {other} is not a time")),
        };
        let bar = Bar { ts_ms, open: value(1)?, high: value(2)?, low: value(3)?, close: value(4)?, volume: value(5)? };
        let closed = !self.confirm
            || match get(6) {
                Field::Bool(b) => *b,
                Field::Str(s) => s.trim() != "0",
                Field::Null => true,
                other => number(other) != Ok(0.0),
            };
        Ok((bar, closed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_sign_and_scale() {
        use parquet::data_type::Decimal;
        assert_eq!(decimal(&Decimal::from_i32(-12345, 9, 2)), Ok(-123.45));
        assert_eq!(decimal(&Decimal::from_i64(4_325_360, 18, 2)), Ok(43253.6));
        let wide = Decimal::from_bytes(vec![0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x85].into(), 12, 1);
        assert_eq!(decimal(&wide), Ok(-12.3));
    }

    #[test]
    fn numbers_from_every_accepted_field() {
        assert_eq!(number(&Field::Str(" 1.5 ".into())), Ok(1.5));
        assert_eq!(number(&Field::Int(7)), Ok(7.0));
        assert!(number(&Field::Null).is_err());
        assert!(number(&Field::Str("x".into())).is_err());
        assert!(number(&Field::Bool(true)).is_err());
    }
}
