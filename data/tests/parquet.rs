//! Candle Parquet files written with the same `parquet` crate, read back through
//! `candles::open`: several row groups, both column namings, the accepted types, and files that
//! must be refused with the row or the column named.

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::path::Path;
use std::sync::Arc;
use tradebox_data::DataError;
use tradebox_data::candles::{self, Bar, Format};

/// A column's values for one row group: `None` is a null (optional columns only).
enum Col {
    I64(Vec<Option<i64>>),
    I32(Vec<Option<i32>>),
    F64(Vec<Option<f64>>),
    Text(Vec<Option<&'static str>>),
}

/// Writes `groups` (each a list of columns in schema order) under `schema`, Snappy-compressed.
fn write(path: &Path, schema: &str, groups: &[Vec<Col>]) {
    write_with(path, schema, groups, Compression::SNAPPY);
}

fn write_with(path: &Path, schema: &str, groups: &[Vec<Col>], codec: Compression) {
    let schema = Arc::new(parse_message_type(schema).expect("schema"));
    let descriptor = parquet::schema::types::SchemaDescriptor::new(schema.clone());
    let props = Arc::new(WriterProperties::builder().set_compression(codec).build());
    let file = std::fs::File::create(path).expect("create");
    let mut writer = SerializedFileWriter::new(file, schema, props).expect("writer");
    for group in groups {
        let mut rg = writer.next_row_group().expect("row group");
        let mut columns = group.iter().enumerate();
        while let Some(mut column) = rg.next_column().expect("column") {
            let (i, values) = columns.next().expect("a column per schema field");
            let optional = descriptor.column(i).max_def_level() > 0;
            fn split<T: Clone>(v: &[Option<T>], optional: bool) -> (Vec<T>, Option<Vec<i16>>) {
                let values = v.iter().flatten().cloned().collect();
                let levels = v.iter().map(|x| i16::from(x.is_some())).collect();
                (values, optional.then_some(levels))
            }
            match values {
                Col::I64(v) => {
                    let (values, levels) = split(v, optional);
                    column.typed::<Int64Type>().write_batch(&values, levels.as_deref(), None).expect("write");
                }
                Col::I32(v) => {
                    let (values, levels) = split(v, optional);
                    column.typed::<Int32Type>().write_batch(&values, levels.as_deref(), None).expect("write");
                }
                Col::F64(v) => {
                    let (values, levels) = split(v, optional);
                    column.typed::<DoubleType>().write_batch(&values, levels.as_deref(), None).expect("write");
                }
                Col::Text(v) => {
                    let (values, levels) = split(v, optional);
                    let values: Vec<ByteArray> = values.into_iter().map(ByteArray::from).collect();
                    column.typed::<ByteArrayType>().write_batch(&values, levels.as_deref(), None).expect("write");
                }
            }
            column.close().expect("close column");
        }
        rg.close().expect("close row group");
    }
    writer.close().expect("close file");
}

const PLAIN: &str = "message candles {
    REQUIRED INT64 ts_ms; REQUIRED DOUBLE open; REQUIRED DOUBLE high; REQUIRED DOUBLE low;
    REQUIRED DOUBLE close; REQUIRED DOUBLE volume; OPTIONAL BINARY note (UTF8);
}";

fn some<T: Copy>(v: &[T]) -> Vec<Option<T>> {
    v.iter().copied().map(Some).collect()
}

/// One row group of plain candles at `ts` (ms), each bar `o, o+2, o-1, o+1`.
fn plain_group(ts: &[i64], open: f64) -> Vec<Col> {
    let n = ts.len();
    let o: Vec<f64> = (0..n).map(|i| open + i as f64).collect();
    let shift = |d: f64| Col::F64(o.iter().map(|x| Some(x + d)).collect());
    vec![
        Col::I64(some(ts)),
        shift(0.0),
        shift(2.0),
        shift(-1.0),
        shift(1.0),
        Col::F64(vec![Some(10.0); n]),
        Col::Text(vec![None; n]),
    ]
}

fn read(path: &Path) -> Result<Vec<Bar>, DataError> {
    candles::open(path)?.collect()
}

#[test]
fn row_groups_read_in_order() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("bars.parquet");
    write(
        &path,
        PLAIN,
        &[plain_group(&[60_000, 120_000], 100.0), plain_group(&[180_000], 50.0), plain_group(&[240_000, 300_000], 7.5)],
    );
    let c = candles::open(&path).expect("opens");
    assert_eq!(c.format(), Format::Parquet);
    fn sendable<T: Send>(_: &T) {}
    sendable(&c);
    let bars: Vec<Bar> = c.collect::<Result<_, _>>().expect("reads");
    assert_eq!(bars.len(), 5);
    assert_eq!(bars[1], Bar { ts_ms: 120_000, open: 101.0, high: 103.0, low: 100.0, close: 102.0, volume: 10.0 });
    assert_eq!(bars.iter().map(|b| b.ts_ms).collect::<Vec<_>>(), [60_000, 120_000, 180_000, 240_000, 300_000]);
    // The same bytes from a stream (held in memory).
    let bytes = std::fs::read(&path).expect("bytes");
    let streamed: Vec<Bar> = candles::from_reader(&path, Box::new(std::io::Cursor::new(bytes)))
        .expect("opens")
        .collect::<Result<_, _>>()
        .expect("reads");
    assert_eq!(streamed, bars);
}

#[test]
fn okx_names_timestamps_decimals_and_text() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("okx.parquet");
    let schema = "message okx {
        REQUIRED INT64 TS (TIMESTAMP(MICROS,true)); REQUIRED BINARY o (UTF8); REQUIRED BINARY h (UTF8);
        REQUIRED BINARY l (UTF8); REQUIRED BINARY c (UTF8); REQUIRED INT64 vol (DECIMAL(18,4));
        REQUIRED INT32 confirm;
    }";
    write(
        &path,
        schema,
        &[vec![
            Col::I64(some(&[1_705_420_800_000_000, 1_705_424_400_000_123])),
            Col::Text(some(&["43253.6", "43250.9"])),
            Col::Text(some(&["43440.2", "43250.9"])),
            Col::Text(some(&["43000", "43035.1"])),
            Col::Text(some(&["43250.9", "43048.1"])),
            Col::I64(some(&[9_428_787, 0])),
            Col::I32(some(&[1, 1])),
        ]],
    );
    let bars = read(&path).expect("reads");
    assert_eq!(
        bars,
        [
            Bar {
                ts_ms: 1_705_420_800_000,
                open: 43253.6,
                high: 43440.2,
                low: 43000.0,
                close: 43250.9,
                volume: 942.8787
            },
            Bar { ts_ms: 1_705_424_400_000, open: 43250.9, high: 43250.9, low: 43035.1, close: 43048.1, volume: 0.0 },
        ]
    );
}

#[test]
fn bad_rows_are_named() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("bad.parquet");
    // Row 4 (the second group's second row) has a high below its low.
    let mut second = plain_group(&[180_000, 240_000], 50.0);
    second[2] = Col::F64(vec![Some(52.0), Some(40.0)]);
    write(&path, PLAIN, &[plain_group(&[60_000, 120_000], 100.0), second]);
    let all: Vec<_> = candles::open(&path).expect("opens").collect();
    assert_eq!(all.len(), 4, "the first error ends the stream");
    let e = all[3].as_ref().expect_err("row 4");
    assert_eq!(e.line, Some(4));
    assert!(
        e.to_string().ends_with("bad.parquet:4: row 4: low 50 and high 40 must bracket open 51 and close 52"),
        "{e}"
    );

    // A time going back.
    write(&path, PLAIN, &[plain_group(&[120_000], 5.0), plain_group(&[60_000], 5.0)]);
    let e = read(&path).expect_err("back in time");
    assert_eq!(e.line, Some(2));
    assert!(e.reason.contains("oldest first"), "{e}");

    // A null in a price.
    let schema = "message c { REQUIRED INT64 ts; OPTIONAL DOUBLE open; REQUIRED DOUBLE high; REQUIRED DOUBLE low;
        REQUIRED DOUBLE close; REQUIRED DOUBLE volume; }";
    write(
        &path,
        schema,
        &[vec![
            Col::I64(some(&[1, 2])),
            Col::F64(vec![Some(1.0), None]),
            Col::F64(some(&[1.0, 1.0])),
            Col::F64(some(&[1.0, 1.0])),
            Col::F64(some(&[1.0, 1.0])),
            Col::F64(some(&[1.0, 1.0])),
        ]],
    );
    let e = read(&path).expect_err("null");
    assert_eq!((e.line, e.reason.as_str()), (Some(2), "row 2: open: empty (null)"));

    // A bar still forming.
    let schema = "message c { REQUIRED INT64 ts; REQUIRED DOUBLE o; REQUIRED DOUBLE h; REQUIRED DOUBLE l;
        REQUIRED DOUBLE c; REQUIRED DOUBLE vol; REQUIRED BINARY confirm (UTF8); }";
    let ones = || Col::F64(some(&[1.0]));
    write(
        &path,
        schema,
        &[vec![Col::I64(some(&[1])), ones(), ones(), ones(), ones(), ones(), Col::Text(some(&["0"]))]],
    );
    let e = read(&path).expect_err("not closed");
    assert!(e.reason.contains("not closed"), "{e}");
}

#[test]
fn bad_files_are_refused_before_any_row() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("bad.parquet");
    let schema = "message c { REQUIRED INT64 ts_ms; REQUIRED DOUBLE open; REQUIRED DOUBLE high; REQUIRED DOUBLE low;
        REQUIRED DOUBLE close; }";
    let one = || Col::F64(some(&[1.0]));
    write(&path, schema, &[vec![Col::I64(some(&[1])), one(), one(), one(), one()]]);
    let e = candles::open(&path).expect_err("no volume");
    assert_eq!(e.line, None);
    assert!(
        e.reason.contains("no volume column (named volume or vol); the file has: \"ts_ms, open, high, low, close\""),
        "{e}"
    );

    let schema = "message c { REQUIRED DOUBLE ts_ms; REQUIRED DOUBLE open; REQUIRED DOUBLE high; REQUIRED DOUBLE low;
        REQUIRED DOUBLE close; REQUIRED DOUBLE volume; }";
    write(&path, schema, &[vec![one(), one(), one(), one(), one(), one()]]);
    let e = candles::open(&path).expect_err("a float time");
    assert!(e.reason.contains("column ts_ms is DOUBLE; expected INT64 milliseconds or a TIMESTAMP"), "{e}");

    let groups = [plain_group(&[1], 5.0)];
    write_with(&path, PLAIN, &groups, Compression::LZ4_RAW);
    let e = candles::open(&path).expect_err("lz4");
    assert!(e.reason.contains("compressed with LZ4_RAW; this build reads Snappy or uncompressed"), "{e}");
    write_with(&path, PLAIN, &groups, Compression::UNCOMPRESSED);
    assert_eq!(read(&path).map(|b| b.len()), Ok(1));

    // Found by fuzz/ (target `candles`): a footer placing a column chunk at a negative offset,
    // which the parquet crate asserts on; refused before it is handed any such chunk.
    let damaged = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/damaged_footer.parquet");
    let e = candles::open(&damaged).expect_err("damaged");
    assert!(e.reason.contains("damaged: column") && e.reason.contains("lies outside the file"), "{e}");

    // Found by fuzz/ too: a damaged dictionary page the parquet crate asserts on while decoding
    // (upstream: apache/arrow-rs#7102 and kin); the panic is contained and ends the read.
    let damaged = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/damaged_page.parquet");
    let e = read(&damaged).expect_err("damaged");
    assert_eq!(e.line, None, "{e}");
    assert!(
        e.to_string().starts_with(&format!(
            "{}: not a readable Parquet file: damaged at row 1: the parquet crate failed on it (",
            damaged.display()
        )),
        "{e}"
    );
    assert!(!e.to_string().contains('\n'), "{e}");

    std::fs::write(&path, b"PAR1 and then nothing a Parquet reader could use").expect("write");
    let e = candles::open(&path).expect_err("garbage");
    assert!(e.reason.starts_with("not a readable Parquet file"), "{e}");
}

/// A good file cut short, or with its pages overwritten: one line naming the file, whatever
/// the parquet crate does with it (refuses, or panics and is contained).
#[test]
fn truncated_and_garbled_files_are_one_line() {
    let dir = tempfile::tempdir().expect("dir");
    let good = dir.path().join("good.parquet");
    let groups: Vec<Vec<Col>> =
        (0..4).map(|g| plain_group(&[g * 120_000 + 60_000, g * 120_000 + 120_000], 10.0)).collect();
    write(&good, PLAIN, &groups);
    let bytes = std::fs::read(&good).expect("bytes");
    let path = dir.path().join("bad.parquet");
    let one_line = |e: &DataError| {
        let text = e.to_string();
        assert!(!text.contains('\n') && text.len() < 400, "{text}");
        assert!(text.starts_with(&format!("{}:", path.display())), "{text}");
    };
    // Cut anywhere past the magic: no footer to read.
    for cut in [5, bytes.len() / 2, bytes.len() - 9, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).expect("write");
        let e = candles::open(&path).expect_err("cut short");
        one_line(&e);
        assert!(e.reason.starts_with("not a readable Parquet file: "), "{e}");
    }
    // The footer kept, the pages between overwritten: refused at the first row or at open.
    let footer = u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().expect("4 bytes")) as usize;
    for fill in [0x00u8, 0xFF, 0x15] {
        let mut garbled = bytes.clone();
        garbled[4..bytes.len() - 8 - footer].fill(fill);
        std::fs::write(&path, &garbled).expect("write");
        let e = read(&path).expect_err("garbled pages");
        one_line(&e);
        assert!(e.reason.starts_with("not a readable Parquet file: damaged at row 1: "), "{e}");
    }
}

/// The damaged files again in a child process (this test binary, asked for this test only),
/// whose stderr is looked at: a panic the reader contains prints nothing, where the default
/// hook would print its message (and a backtrace) before `catch_unwind` returns.
#[test]
fn a_contained_panic_prints_nothing() {
    const CHILD: &str = "TRADEBOX_DATA_PARQUET_CHILD";
    let damaged = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/damaged_page.parquet");
    if std::env::var_os(CHILD).is_some() {
        for _ in 0..2 {
            let e = read(&damaged).expect_err("damaged");
            println!("error: {e}");
        }
        // A panic elsewhere on this thread still reaches the hook before (the test harness's).
        let elsewhere = std::panic::catch_unwind(|| panic!("an ordinary panic"));
        assert!(elsewhere.is_err());
        return;
    }
    let exe = std::env::current_exe().expect("this test binary");
    let out = std::process::Command::new(exe)
        .args(["--exact", "a_contained_panic_prints_nothing", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.matches("not a readable Parquet file: damaged at row 1").count(), 2, "{stdout}");
    assert_eq!(stderr.matches("panicked").count(), 1, "only the ordinary panic is printed: {stderr}");
    assert!(stderr.contains("an ordinary panic"), "{stderr}");
}
