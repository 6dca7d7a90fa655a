//! `osprey top`: print a scoring run's ranked results: a table for people,
//! JSON lines or CSV with every column (`rank`, `score`, `word`, the event's
//! fields under the names `osprey records` uses, `document`, `topics`,
//! `topic_weights`), or Spot's result file (`spot-tsv`: tab-separated, no
//! header, the 18/9/21 columns of `spot-reference.md` §3.3).
//!
//! Spot columns from Osprey records: flow `treceived` and `tr*` are the UTC
//! start time (`YYYY-MM-DD HH:MM:SS`), `tdur` seconds, `ipkt/ibyt` the
//! initiator's packets/bytes and `opkt/obyt` the responder's, `proto` nfdump's
//! name; DNS `frame_time` is `Mon DD YYYY HH:MM:SS.nnnnnnnnn UTC` (the layout
//! Spot's word code parses), `unix_tstamp` whole seconds, `ip_dst` the client,
//! `dns_qry_class` as tshark printed it (`0x%08x`); proxy columns are the
//! record's fields.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt16Type, UInt64Type};
use clap::{Args, ValueEnum};

use osprey_scorer::words::flow::proto_name;
use osprey_segment::Kind;
use osprey_segment::print::{Format, RecordPrinter};
use osprey_segment::ranked::{RankedRun, event_batch, list_ranked, read_ranked, read_ranked_run};
use osprey_segment::schema::{dns_from_batch, flows_from_batch, ip_from_bytes, proxy_from_batch};
use osprey_segment::time::{civil, parse_rfc3339, rfc3339};

use crate::records::KindArg;
use crate::{Global, Outcome, data_dir};

/// Output format of `osprey top`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TopFormat {
    /// Aligned columns for reading.
    Table,
    /// One JSON object per line, every column.
    Jsonl,
    /// CSV with a header, every column.
    Csv,
    /// Spot's result file columns, tab-separated, no header.
    SpotTsv,
}

/// Arguments of `osprey top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Data directory.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Which records.
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// Print at most this many (Spot's MAXRESULTS; -1: all the run kept).
    #[arg(short = 'n', long = "max-results", default_value_t = 20, allow_negative_numbers = true)]
    pub n: i64,
    /// Only events scoring at most this (Spot's TOL; default: the run's own, 1e-6 unless set at scoring).
    #[arg(long)]
    pub tol: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: TopFormat,
    /// Use the run whose scored window contains this time (default: the latest run).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

/// Runs `osprey top`.
pub fn run(global: &Global, args: TopArgs) -> Result<Outcome> {
    let data = data_dir(global, args.data)?;
    let kind: Kind = args.kind.into();
    let files = list_ranked(&data, kind)?;
    let file = match &args.at {
        None => files.last().cloned(),
        Some(t) => {
            let at = parse_rfc3339(t).with_context(|| format!("{t:?} is not an RFC 3339 time or YYYY-MM-DD date"))?;
            files.iter().rev().find(|p| read_ranked_run(p).is_ok_and(|r| r.window.contains(at))).cloned()
        }
    };
    let file = file.ok_or_else(|| {
        anyhow::anyhow!("no ranked {kind} results under {}: run `osprey score --data {} --kind {kind}` first", data.display(), data.display())
    })?;
    let (run, batches) = read_ranked(&file).with_context(|| format!("reading {}", file.display()))?;
    let tol = args.tol.unwrap_or(run.threshold);
    let mut left = if args.n > 0 { args.n as u64 } else { u64::MAX };
    let stdout = std::io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, stdout);
    if args.format == TopFormat::Table && !global.quiet {
        writeln!(out, "{}", describe(&run, &file))?;
    }
    let mut picked: Vec<(&RecordBatch, Vec<usize>)> = Vec::new();
    for b in &batches {
        if left == 0 {
            break;
        }
        let score = b.column(1).as_primitive::<Float64Type>();
        let rows: Vec<usize> = (0..b.num_rows()).filter(|&i| score.value(i) <= tol).take(usize::try_from(left).unwrap_or(usize::MAX)).collect();
        left -= rows.len() as u64;
        picked.push((b, rows));
    }
    match args.format {
        TopFormat::Jsonl | TopFormat::Csv => {
            let f = if args.format == TopFormat::Jsonl { Format::Jsonl } else { Format::Csv };
            let mut p = RecordPrinter::new(&mut out, f);
            for (b, rows) in &picked {
                p.print_rows(b, rows.iter().copied())?;
            }
            p.finish()?;
        }
        TopFormat::Table => {
            let mut header = true;
            for (b, rows) in &picked {
                table(&mut out, kind, b, rows, &mut header)?;
            }
        }
        TopFormat::SpotTsv => {
            for (b, rows) in &picked {
                spot_tsv(&mut out, kind, b, rows)?;
            }
        }
    }
    out.flush()?;
    Ok(Outcome::Clean)
}

fn describe(run: &RankedRun, file: &std::path::Path) -> String {
    let f = |t: Option<i64>| t.map_or_else(|| "open".to_string(), rfc3339);
    let or = |v: &str| if v.is_empty() { "not recorded".to_string() } else { v.to_string() };
    // A file from before the provenance keys existed has none of them.
    let trained = if run.model_id.is_empty() && run.train_window == Default::default() {
        "not recorded".to_string()
    } else {
        format!("[{}, {})", f(run.train_window.from), f(run.train_window.to))
    };
    format!(
        "# {} run over [{}, {}): {} events scored, threshold {}, max results {}\n# model: {} ({}), id {}, trained on {}; mode {}, scoring {}",
        run.kind,
        f(run.window.from),
        f(run.window.to),
        run.events_scored,
        run.threshold,
        if run.max_results > 0 { run.max_results.to_string() } else { "all".to_string() },
        run.model,
        file.display(),
        or(&run.model_id),
        trained,
        run.mode,
        or(&run.scoring),
    )
}

/// Rank, score, word and topics of row `i`.
fn lead(b: &RecordBatch, i: usize) -> (u64, f64, String, String, String) {
    let rank = b.column(0).as_primitive::<UInt64Type>().value(i);
    let score = b.column(1).as_primitive::<Float64Type>().value(i);
    let word = b.column(2).as_string::<i32>().value(i).to_string();
    let n = b.num_columns();
    let doc = ip_from_bytes(b.column(n - 3).as_fixed_size_binary().value(i)).to_string();
    let topics = b.column(n - 2).as_list::<i32>().value(i);
    let weights = b.column(n - 1).as_list::<i32>().value(i);
    let (t, w) = (topics.as_primitive::<UInt16Type>(), weights.as_primitive::<Float64Type>());
    let tw: Vec<String> = (0..t.len()).map(|j| format!("{}:{:.2}", t.value(j), w.value(j))).collect();
    (rank, score, word, doc, tw.join(" "))
}

pub(crate) fn table(out: &mut impl Write, kind: Kind, b: &RecordBatch, rows: &[usize], header: &mut bool) -> Result<()> {
    let ev = event_batch(kind, b)?;
    let detail: Vec<String> = match kind {
        Kind::Flow => flows_from_batch(&ev)?
            .iter()
            .map(|f| {
                format!(
                    "{} {}:{} -> {}:{} {} {}p/{}B rev {}p/{}B",
                    rfc3339(f.ts_start),
                    f.src_ip,
                    f.src_port,
                    f.dst_ip,
                    f.dst_port,
                    proto_name(f.proto),
                    f.packets,
                    f.bytes,
                    f.rev_packets,
                    f.rev_bytes
                )
            })
            .collect(),
        Kind::Dns => dns_from_batch(&ev)?
            .iter()
            .map(|d| {
                format!(
                    "{} {} {} type {} rcode {} {}",
                    rfc3339(d.ts),
                    d.client_ip,
                    d.qname,
                    d.qtype,
                    d.rcode,
                    if d.is_response { "response" } else { "query" }
                )
            })
            .collect(),
        Kind::Proxy => proxy_from_batch(&ev)?
            .iter()
            .map(|p| {
                format!(
                    "{} {} {} {} {}",
                    rfc3339(p.ts),
                    p.clientip.map_or_else(|| "-".into(), |ip| ip.to_string()),
                    p.reqmethod,
                    p.fulluri,
                    p.respcode
                )
            })
            .collect(),
    };
    if std::mem::take(header) {
        writeln!(out, "{:>6}  {:<12}  {:<26}  {:<15}  {:<24}  event", "rank", "score", "word", "document", "topics")?;
    }
    for &i in rows {
        let (rank, score, word, doc, topics) = lead(b, i);
        writeln!(out, "{rank:>6}  {:<12}  {word:<26}  {doc:<15}  {topics:<24}  {}", format!("{score:.4e}"), detail[i])?;
    }
    Ok(())
}

fn spot_tsv(out: &mut impl Write, kind: Kind, b: &RecordBatch, rows: &[usize]) -> Result<()> {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let ev = event_batch(kind, b)?;
    let score = |i: usize| b.column(1).as_primitive::<Float64Type>().value(i);
    let word = |i: usize| b.column(2).as_string::<i32>().value(i).to_string();
    // Tabs and newlines inside a text field would break the row.
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    match kind {
        Kind::Flow => {
            let flows = flows_from_batch(&ev)?;
            for &i in rows {
                let f = &flows[i];
                let c = civil(f.ts_start);
                let cols = [
                    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", c.year, c.month, c.day, c.hour, c.minute, c.second),
                    c.year.to_string(),
                    c.month.to_string(),
                    c.day.to_string(),
                    c.hour.to_string(),
                    c.minute.to_string(),
                    c.second.to_string(),
                    format!("{:.3}", (f.ts_end - f.ts_start) as f64 / 1e9),
                    f.src_ip.to_canonical().to_string(),
                    f.dst_ip.to_canonical().to_string(),
                    f.src_port.to_string(),
                    f.dst_port.to_string(),
                    proto_name(f.proto).into_owned(),
                    f.packets.to_string(),
                    f.bytes.to_string(),
                    f.rev_packets.to_string(),
                    f.rev_bytes.to_string(),
                    score(i).to_string(),
                ];
                writeln!(out, "{}", cols.join("\t"))?;
            }
        }
        Kind::Dns => {
            let dns = dns_from_batch(&ev)?;
            for &i in rows {
                let d = &dns[i];
                let c = civil(d.ts);
                let cols = [
                    format!(
                        "{} {:>2} {} {:02}:{:02}:{:02}.{:09} UTC",
                        MONTHS[(c.month as usize).saturating_sub(1).min(11)],
                        c.day,
                        c.year,
                        c.hour,
                        c.minute,
                        c.second,
                        c.nanos
                    ),
                    d.ts.div_euclid(1_000_000_000).to_string(),
                    d.frame_len.to_string(),
                    d.client_ip.to_canonical().to_string(),
                    clean(d.qname.strip_suffix('.').unwrap_or(&d.qname)),
                    format!("0x{:08x}", d.qclass),
                    d.qtype.to_string(),
                    d.rcode.to_string(),
                    score(i).to_string(),
                ];
                writeln!(out, "{}", cols.join("\t"))?;
            }
        }
        Kind::Proxy => {
            let px = proxy_from_batch(&ev)?;
            for &i in rows {
                let p = &px[i];
                let ip = |x: Option<std::net::IpAddr>| x.map_or_else(String::new, |a| a.to_canonical().to_string());
                let cols = [
                    clean(&p.p_date),
                    clean(&p.p_time),
                    ip(p.clientip),
                    clean(&p.host),
                    clean(&p.reqmethod),
                    clean(&p.useragent),
                    clean(&p.resconttype),
                    p.duration.to_string(),
                    clean(&p.username),
                    clean(&p.webcat),
                    clean(&p.referer),
                    clean(&p.respcode),
                    clean(&p.uriport),
                    clean(&p.uripath),
                    clean(&p.uriquery),
                    ip(p.serverip),
                    p.scbytes.to_string(),
                    p.csbytes.to_string(),
                    clean(&p.fulluri),
                    word(i),
                    score(i).to_string(),
                ];
                writeln!(out, "{}", cols.join("\t"))?;
            }
        }
    }
    Ok(())
}
