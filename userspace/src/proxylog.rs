//! Proxy-log ingest: HTTP proxy access logs → [`ProxyRecord`]s → proxy segments.
//!
//! Three line formats, all read into the same record (Spot's 28-column `proxy`
//! table, `spot-reference.md` §1.3):
//!
//! - **Spot** ([`ProxyFormat::Spot`]): Blue Coat `bcreportermain_v1` lines as
//!   Spot's `bluecoat.py` read them. Only lines starting with a `YYYY-MM-DD` date
//!   are kept, tabs become spaces, fields are split like a shell (double quotes
//!   group), and fields 0–26 are taken by position.
//! - **ELFF/W3C** ([`ProxyFormat::Elff`]): the same lexing, but fields are named
//!   by the file's `#Fields:` directive (which may change mid-file) or by a
//!   list the user gives (`--fields`) for logs exported without a header.
//!   Fields Osprey does not store are ignored; stored fields the log lacks are
//!   `-`, as Blue Coat writes an empty value.
//! - **Squid native** ([`ProxyFormat::Squid`]): `time elapsed client
//!   code/status bytes method URL user hierarchy/peer type`. The URL is split
//!   into scheme, host, port, path and query the way Blue Coat logs them, so the
//!   proxy words come out the same for both proxies. Squid logs no user agent,
//!   client bytes or proxy address: those are `-`/0/empty.
//!
//! [`ProxyFormat::Auto`] picks per file from its first data line: a `#Fields:`
//! directive before it means ELFF; a leading date means Spot's positional
//! layout (what Spot assumed for every file); a leading epoch time means Squid.
//!
//! Times are UTC, as both proxies log them (ELFF `date`/`time` are GMT; Squid
//! logs epoch seconds). A line that cannot be read is skipped and counted by
//! [`ProxySkip`] reason, never fatal: one bad line in a day of logs must not
//! stop the rest.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use osprey_segment::SegmentError;
use osprey_segment::partition::{PartitionedWriter, WriterConfig};
use osprey_segment::records::{ProxyRecord, TimestampNs};
use osprey_segment::time::{civil, days_from_civil};

/// Lines longer than this are skipped (a corrupt or hostile file must not make
/// one "line" the size of the file).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// How the lines of a file are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyFormat {
    /// Decide per file from its first data line (see the module docs).
    Auto,
    /// Spot's positional Blue Coat layout (`bcreportermain_v1`).
    Spot,
    /// ELFF/W3C with field names from `#Fields:` directives, or from this list
    /// when given (it then overrides any directive in the file).
    Elff(Option<Vec<String>>),
    /// Squid's native `access.log` format.
    Squid,
}

impl ProxyFormat {
    /// Parses a format name: `auto`, `spot`, `elff` or `squid`.
    pub fn parse(s: &str) -> Option<ProxyFormat> {
        match s {
            "auto" => Some(ProxyFormat::Auto),
            "spot" | "bluecoat" => Some(ProxyFormat::Spot),
            "elff" | "w3c" => Some(ProxyFormat::Elff(None)),
            "squid" => Some(ProxyFormat::Squid),
            _ => None,
        }
    }
}

/// Why a line was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProxySkip {
    /// Not valid UTF-8.
    NotUtf8,
    /// Longer than [`MAX_LINE_BYTES`].
    TooLong,
    /// An unterminated double quote.
    UnbalancedQuote,
    /// Fewer fields than the layout needs (or, for ELFF, a count different
    /// from the `#Fields:` directive).
    FieldCount,
    /// The date, time or epoch could not be read.
    BadTime,
    /// A numeric field (time taken, byte counts) is neither a number nor `-`.
    BadNumber,
    /// A data line in an ELFF file before any `#Fields:` directive.
    NoFieldsDirective,
    /// Spot's layout: the line does not start with a `YYYY-MM-DD` date (Spot
    /// dropped these silently; Osprey counts them).
    NoLeadingDate,
    /// Auto-detection could not tell the format from the first data line.
    UnknownFormat,
}

impl ProxySkip {
    /// A stable name for summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxySkip::NotUtf8 => "not_utf8",
            ProxySkip::TooLong => "too_long",
            ProxySkip::UnbalancedQuote => "unbalanced_quote",
            ProxySkip::FieldCount => "field_count",
            ProxySkip::BadTime => "bad_time",
            ProxySkip::BadNumber => "bad_number",
            ProxySkip::NoFieldsDirective => "no_fields_directive",
            ProxySkip::NoLeadingDate => "no_leading_date",
            ProxySkip::UnknownFormat => "unknown_format",
        }
    }
}

/// Errors that stop a proxy ingest (bad lines are skips, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A log file could not be opened or read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Writing segments failed.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// A `--fields` list names no field Osprey can use to place a record in
    /// time.
    #[error("the field list needs `date` and `time` (or `x-timestamp-unix`); got: {0}")]
    FieldsWithoutTime(String),
}

/// Counters of one ingest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Lines read (including comments and skipped lines).
    pub lines: u64,
    /// Comment and directive lines (`#...`) and blank lines.
    pub comments: u64,
    /// Records stored.
    pub records: u64,
    /// Skipped lines by reason.
    pub skipped: BTreeMap<ProxySkip, u64>,
    /// Files read.
    pub files: u64,
    /// Segment files written.
    pub segments: Vec<PathBuf>,
}

impl ProxyStats {
    /// Total skipped lines.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// The record fields a log field can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Date,
    Time,
    UnixTime,
    TimeTaken,
    ClientIp,
    Username,
    AuthGroup,
    ExceptionId,
    FilterResult,
    Categories,
    Referer,
    Status,
    Action,
    Method,
    ContentType,
    Scheme,
    Host,
    Port,
    Path,
    Query,
    Extension,
    UserAgent,
    ServerIp,
    ScBytes,
    CsBytes,
    VirusId,
    AppName,
    AppOperation,
    /// `cs-uri`: the whole URL, split when the parts are not logged separately.
    Uri,
    Ignored,
}

/// Spot's positional layout (`bluecoat.py`, fields 0–26).
const SPOT_LAYOUT: [Field; 27] = [
    Field::Date,
    Field::Time,
    Field::TimeTaken,
    Field::ClientIp,
    Field::Username,
    Field::AuthGroup,
    Field::ExceptionId,
    Field::FilterResult,
    Field::Categories,
    Field::Referer,
    Field::Status,
    Field::Action,
    Field::Method,
    Field::ContentType,
    Field::Scheme,
    Field::Host,
    Field::Port,
    Field::Path,
    Field::Query,
    Field::Extension,
    Field::UserAgent,
    Field::ServerIp,
    Field::ScBytes,
    Field::CsBytes,
    Field::VirusId,
    Field::AppName,
    Field::AppOperation,
];

/// Maps an ELFF field name (case-insensitive) to the record field it fills.
fn field_by_name(name: &str) -> Field {
    match name.to_ascii_lowercase().as_str() {
        "date" | "gmt-date" => Field::Date,
        "time" | "gmttime" | "gmt-time" => Field::Time,
        "x-timestamp-unix" => Field::UnixTime,
        "time-taken" => Field::TimeTaken,
        "c-ip" => Field::ClientIp,
        "cs-username" => Field::Username,
        "cs-auth-group" => Field::AuthGroup,
        "x-exception-id" => Field::ExceptionId,
        "sc-filter-result" => Field::FilterResult,
        "cs-categories" | "sc-filter-category" => Field::Categories,
        "cs(referer)" => Field::Referer,
        "sc-status" => Field::Status,
        "s-action" => Field::Action,
        "cs-method" => Field::Method,
        "rs(content-type)" => Field::ContentType,
        "cs-uri-scheme" => Field::Scheme,
        "cs-host" => Field::Host,
        "cs-uri-port" => Field::Port,
        "cs-uri-path" => Field::Path,
        "cs-uri-query" => Field::Query,
        "cs-uri-extension" => Field::Extension,
        "cs(user-agent)" => Field::UserAgent,
        "s-ip" => Field::ServerIp,
        "sc-bytes" => Field::ScBytes,
        "cs-bytes" => Field::CsBytes,
        "x-virus-id" => Field::VirusId,
        "x-bluecoat-application-name" => Field::AppName,
        "x-bluecoat-application-operation" => Field::AppOperation,
        "cs-uri" => Field::Uri,
        _ => Field::Ignored,
    }
}

fn layout_from_names<S: AsRef<str>>(names: &[S]) -> Vec<Field> {
    names.iter().map(|n| field_by_name(n.as_ref())).collect()
}

fn has_time(layout: &[Field]) -> bool {
    layout.contains(&Field::UnixTime) || (layout.contains(&Field::Date) && layout.contains(&Field::Time))
}

/// Splits a line like Python's `shlex.split` in POSIX mode for the inputs
/// proxies write: whitespace separates, double quotes group (and are removed),
/// a backslash inside quotes escapes `"` or `\`. Outside quotes a backslash is
/// kept literally: Blue Coat writes Windows group names such as `ORG\GR` in
/// unquoted fields, and `shlex` would eat the backslash (Spot's behaviour; the
/// word features never read those fields).
fn split_fields(line: &str) -> Result<Vec<String>, ProxySkip> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_token = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_token = true;
                loop {
                    match chars.next() {
                        None => return Err(ProxySkip::UnbalancedQuote),
                        Some('"') => break,
                        Some('\\') if matches!(chars.peek(), Some('"') | Some('\\')) => {
                            cur.push(chars.next().unwrap_or('\\'));
                        }
                        Some(ch) => cur.push(ch),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_token {
                    out.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            c => {
                in_token = true;
                cur.push(c);
            }
        }
    }
    if in_token {
        out.push(cur);
    }
    Ok(out)
}

fn two_digits(s: &str) -> Option<u32> {
    if s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) { s.parse().ok() } else { None }
}

/// Reads `YYYY-MM-DD` and `HH:MM:SS[.fff]` into ns since the epoch (UTC).
fn parse_date_time(date: &str, time: &str) -> Option<TimestampNs> {
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 || d[0].len() != 4 || !d[0].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, month, day) = (d[0].parse::<i32>().ok()?, two_digits(d[1])?, two_digits(d[2])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (hms, frac) = match time.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (time, None),
    };
    let t: Vec<&str> = hms.split(':').collect();
    if t.len() != 3 {
        return None;
    }
    let (h, m, s) = (two_digits(t[0])?, two_digits(t[1])?, two_digits(t[2])?);
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let mut nanos: i64 = 0;
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        nanos = f.parse::<i64>().ok()? * 10i64.pow(9 - f.len() as u32);
    }
    let secs = days_from_civil(year, month, day) * 86_400 + i64::from(h * 3600 + m * 60 + s);
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Reads epoch seconds with an optional fraction (`1157689312.049`).
fn parse_epoch(s: &str) -> Option<TimestampNs> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || int.len() > 11 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos: i64 = 0;
    if !frac.is_empty() {
        nanos = frac.parse::<i64>().ok()? * 10i64.pow(9 - frac.len() as u32);
    }
    int.parse::<i64>().ok()?.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// A count or duration: digits, or `-` (not logged) as 0.
fn parse_count(s: &str) -> Result<i64, ProxySkip> {
    if s == "-" || s.is_empty() {
        return Ok(0);
    }
    s.parse::<i64>().ok().filter(|v| *v >= 0).ok_or(ProxySkip::BadNumber)
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

fn is_date_start(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
}

fn is_epoch_start(s: &str) -> bool {
    s.split_whitespace().next().is_some_and(|t| parse_epoch(t).is_some())
}

/// Spot's `fulluri`: host, then the path if longer than one character, then
/// the query if longer than one character.
pub fn full_uri(host: &str, path: &str, query: &str) -> String {
    let mut s = String::with_capacity(host.len() + path.len() + query.len());
    s.push_str(host);
    if path.chars().count() > 1 {
        s.push_str(path);
    }
    if query.chars().count() > 1 {
        s.push_str(query);
    }
    s
}

/// The parts of a URL as Blue Coat logs them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UrlParts {
    scheme: String,
    host: String,
    port: String,
    path: String,
    query: String,
    extension: String,
}

/// Splits a proxy log URL. `CONNECT host:port` targets become scheme `tcp`
/// and path `/`, as Blue Coat logs tunnels; an absolute URL keeps its scheme,
/// with the scheme's default port when none is given. The query keeps its
/// leading `?` (Blue Coat's `cs-uri-query` does).
fn split_url(url: &str, method: &str) -> UrlParts {
    let dash = || "-".to_string();
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) => (s.to_ascii_lowercase(), r),
        _ if method.eq_ignore_ascii_case("CONNECT") => ("tcp".to_string(), url),
        _ => (dash(), url),
    };
    let (authority, path_query) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    // Credentials never belong in a host column.
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h.to_string(), p.strip_prefix(':').unwrap_or("").to_string()),
            None => (authority.to_string(), String::new()),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h.to_string(), p.to_string()),
            _ => (authority.to_string(), String::new()),
        }
    };
    let port = if !port.is_empty() {
        port
    } else {
        match scheme.as_str() {
            "http" => "80".into(),
            "https" => "443".into(),
            "ftp" => "21".into(),
            _ => dash(),
        }
    };
    let (path, query) = match path_query.find('?') {
        Some(i) => (&path_query[..i], &path_query[i..]),
        None => (path_query, ""),
    };
    let path = if path.is_empty() { "/".to_string() } else { path.to_string() };
    let query = if query.is_empty() { dash() } else { query.to_string() };
    let extension = path_extension(&path);
    UrlParts { scheme, host: if host.is_empty() { dash() } else { host }, port, path, query, extension }
}

/// The extension of a URL path's last segment (`-` when it has none).
fn path_extension(path: &str) -> String {
    let last = path.rsplit('/').next().unwrap_or("");
    match last.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => ext.to_string(),
        _ => "-".to_string(),
    }
}

fn empty_record() -> ProxyRecord {
    let dash = || "-".to_string();
    ProxyRecord {
        ts: 0,
        p_date: String::new(),
        p_time: String::new(),
        clientip: None,
        host: dash(),
        reqmethod: dash(),
        useragent: dash(),
        resconttype: dash(),
        duration: 0,
        username: dash(),
        authgroup: dash(),
        exceptionid: dash(),
        filterresult: dash(),
        webcat: dash(),
        referer: dash(),
        respcode: dash(),
        action: dash(),
        urischeme: dash(),
        uriport: dash(),
        uripath: dash(),
        uriquery: dash(),
        uriextension: dash(),
        serverip: None,
        scbytes: 0,
        csbytes: 0,
        virusid: dash(),
        bcappname: dash(),
        bcappoper: dash(),
        fulluri: String::new(),
    }
}

fn set_date_time_from_ts(r: &mut ProxyRecord) {
    let c = civil(r.ts);
    r.p_date = format!("{:04}-{:02}-{:02}", c.year, c.month, c.day);
    r.p_time = format!("{:02}:{:02}:{:02}", c.hour, c.minute, c.second);
}

/// Builds a record from named fields (Spot's positional layout or ELFF).
fn record_from_fields(layout: &[Field], fields: Vec<String>) -> Result<ProxyRecord, ProxySkip> {
    let mut r = empty_record();
    let (mut date, mut time, mut unix, mut uri) = (None, None, None, None);
    let mut logged_parts = false;
    for (f, v) in layout.iter().zip(fields) {
        match f {
            Field::Date => date = Some(v),
            Field::Time => time = Some(v),
            Field::UnixTime => unix = Some(v),
            Field::TimeTaken => r.duration = parse_count(&v)?,
            Field::ClientIp => r.clientip = parse_ip(&v),
            Field::Username => r.username = v,
            Field::AuthGroup => r.authgroup = v,
            Field::ExceptionId => r.exceptionid = v,
            Field::FilterResult => r.filterresult = v,
            Field::Categories => r.webcat = v,
            Field::Referer => r.referer = v,
            Field::Status => r.respcode = v,
            Field::Action => r.action = v,
            Field::Method => r.reqmethod = v,
            Field::ContentType => r.resconttype = v,
            Field::Scheme => (r.urischeme, logged_parts) = (v, true),
            Field::Host => (r.host, logged_parts) = (v, true),
            Field::Port => r.uriport = v,
            Field::Path => r.uripath = v,
            Field::Query => r.uriquery = v,
            Field::Extension => r.uriextension = v,
            Field::UserAgent => r.useragent = v,
            Field::ServerIp => r.serverip = parse_ip(&v),
            Field::ScBytes => r.scbytes = parse_count(&v)?,
            Field::CsBytes => r.csbytes = parse_count(&v)?,
            Field::VirusId => r.virusid = v,
            Field::AppName => r.bcappname = v,
            Field::AppOperation => r.bcappoper = v,
            Field::Uri => uri = Some(v),
            Field::Ignored => {}
        }
    }
    match (date, time, unix) {
        (Some(d), Some(t), _) => {
            r.ts = parse_date_time(&d, &t).ok_or(ProxySkip::BadTime)?;
            // Keep what was logged, as Spot's table did.
            r.p_date = d;
            r.p_time = t;
        }
        (_, _, Some(u)) => {
            r.ts = parse_epoch(&u).ok_or(ProxySkip::BadTime)?;
            set_date_time_from_ts(&mut r);
        }
        _ => return Err(ProxySkip::BadTime),
    }
    if let (Some(u), false) = (uri, logged_parts) {
        let p = split_url(&u, &r.reqmethod);
        (r.urischeme, r.host, r.uriport, r.uripath, r.uriquery, r.uriextension) = (p.scheme, p.host, p.port, p.path, p.query, p.extension);
    } else if r.uriextension == "-" && !layout.contains(&Field::Extension) {
        // Not logged: derive it from the path, as the proxy would have.
        r.uriextension = path_extension(&r.uripath);
    }
    r.fulluri = full_uri(&r.host, &r.uripath, &r.uriquery);
    Ok(r)
}

/// Reads one Squid native line.
fn record_from_squid(line: &str) -> Result<ProxyRecord, ProxySkip> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 10 {
        return Err(ProxySkip::FieldCount);
    }
    let mut r = empty_record();
    r.ts = parse_epoch(f[0]).ok_or(ProxySkip::BadTime)?;
    set_date_time_from_ts(&mut r);
    r.duration = parse_count(f[1])?;
    r.clientip = parse_ip(f[2]);
    let (action, status) = f[3].split_once('/').unwrap_or((f[3], "-"));
    (r.action, r.respcode) = (action.to_string(), status.to_string());
    r.scbytes = parse_count(f[4])?;
    r.reqmethod = f[5].to_string();
    let p = split_url(f[6], f[5]);
    (r.urischeme, r.host, r.uriport, r.uripath, r.uriquery, r.uriextension) = (p.scheme, p.host, p.port, p.path, p.query, p.extension);
    r.username = f[7].to_string();
    // `hierarchy/peer`: the server or parent the proxy fetched from, the
    // nearest Squid has to Blue Coat's supplier. Squid logs no `s-ip`.
    // A content type with parameters may contain spaces: keep the rest.
    r.resconttype = f[9..].join(" ");
    r.fulluri = full_uri(&r.host, &r.uripath, &r.uriquery);
    Ok(r)
}

/// The format decided for the file being read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Active {
    Undecided,
    Spot,
    Elff(Option<Vec<Field>>),
    Squid,
}

/// Turns lines into records; keeps the state a file's directives set.
#[derive(Debug)]
pub struct ProxyLineParser {
    format: ProxyFormat,
    active: Active,
    fixed_layout: Option<Vec<Field>>,
}

impl ProxyLineParser {
    /// A parser for `format`. Call [`ProxyLineParser::start_file`] between files.
    pub fn new(format: ProxyFormat) -> Result<Self, ProxyError> {
        let fixed_layout = match &format {
            ProxyFormat::Elff(Some(names)) => {
                let layout = layout_from_names(names);
                if !has_time(&layout) {
                    return Err(ProxyError::FieldsWithoutTime(names.join(" ")));
                }
                Some(layout)
            }
            _ => None,
        };
        let mut p = ProxyLineParser { format, active: Active::Undecided, fixed_layout };
        p.start_file();
        Ok(p)
    }

    /// Forgets per-file state (the `#Fields:` directive, the detected format).
    pub fn start_file(&mut self) {
        self.active = match &self.format {
            ProxyFormat::Auto => Active::Undecided,
            ProxyFormat::Spot => Active::Spot,
            ProxyFormat::Elff(_) => Active::Elff(self.fixed_layout.clone()),
            ProxyFormat::Squid => Active::Squid,
        };
    }

    /// Parses one line (without its newline). `Ok(None)`: a comment,
    /// directive or blank line.
    pub fn line(&mut self, raw: &[u8]) -> Result<Option<ProxyRecord>, ProxySkip> {
        if raw.len() > MAX_LINE_BYTES {
            return Err(ProxySkip::TooLong);
        }
        let line = std::str::from_utf8(raw).map_err(|_| ProxySkip::NotUtf8)?;
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return Ok(None);
        }
        if let Some(directive) = line.strip_prefix('#') {
            if let Some(names) = directive.strip_prefix("Fields:") {
                // A header always wins over auto-detection; an explicit
                // `--fields` list wins over the header.
                if self.fixed_layout.is_none() && matches!(self.format, ProxyFormat::Auto | ProxyFormat::Elff(None)) {
                    let names: Vec<&str> = names.split_whitespace().collect();
                    self.active = Active::Elff(Some(layout_from_names(&names)));
                }
            }
            return Ok(None);
        }
        if self.active == Active::Undecided {
            self.active = if is_date_start(line) {
                Active::Spot
            } else if is_epoch_start(line) {
                Active::Squid
            } else {
                return Err(ProxySkip::UnknownFormat);
            };
        }
        let rec = match &self.active {
            Active::Undecided => Err(ProxySkip::UnknownFormat),
            Active::Squid => record_from_squid(line),
            Active::Spot => {
                if !is_date_start(line) {
                    return Err(ProxySkip::NoLeadingDate);
                }
                let fields = split_fields(&line.replace('\t', " "))?;
                if fields.len() < SPOT_LAYOUT.len() {
                    return Err(ProxySkip::FieldCount);
                }
                record_from_fields(&SPOT_LAYOUT, fields)
            }
            Active::Elff(None) => Err(ProxySkip::NoFieldsDirective),
            Active::Elff(Some(layout)) => {
                // W3C ELFF separates with spaces or tabs.
                let fields = split_fields(line)?;
                if fields.len() != layout.len() {
                    return Err(ProxySkip::FieldCount);
                }
                record_from_fields(layout, fields)
            }
        };
        rec.map(Some)
    }
}

/// Reads proxy logs into proxy segments under a data directory.
pub struct ProxyIngestor {
    parser: ProxyLineParser,
    writer: PartitionedWriter<ProxyRecord>,
    stats: ProxyStats,
}

impl std::fmt::Debug for ProxyIngestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyIngestor").field("stats", &self.stats).finish_non_exhaustive()
    }
}

impl ProxyIngestor {
    /// Writes into `data` with `cfg`, reading lines as `format`.
    pub fn new(data: &Path, cfg: WriterConfig, format: ProxyFormat) -> Result<Self, ProxyError> {
        Ok(ProxyIngestor { parser: ProxyLineParser::new(format)?, writer: PartitionedWriter::new(data, cfg)?, stats: ProxyStats::default() })
    }

    /// The counters so far.
    pub fn stats(&self) -> &ProxyStats {
        &self.stats
    }

    /// Reads one log file. Lines that cannot be read are counted; an I/O
    /// error stops this file but keeps what was already read from it.
    pub fn ingest_file(&mut self, path: &Path) -> Result<(), ProxyError> {
        let file = File::open(path).map_err(|source| ProxyError::Io { path: path.to_path_buf(), source })?;
        self.ingest_reader(path, BufReader::with_capacity(256 * 1024, file))
    }

    /// Reads lines from any reader (one "file": per-file state is reset first).
    /// `name` is what read errors report.
    pub fn ingest_reader<R: BufRead>(&mut self, name: &Path, mut reader: R) -> Result<(), ProxyError> {
        self.parser.start_file();
        self.stats.files += 1;
        let mut buf = Vec::with_capacity(1024);
        loop {
            buf.clear();
            // Read at most a bit more than the line limit, so a file without
            // newlines cannot grow the buffer without bound.
            let n =
                read_line_bounded(&mut reader, &mut buf, MAX_LINE_BYTES + 1).map_err(|source| ProxyError::Io { path: name.to_path_buf(), source })?;
            if n == 0 {
                return Ok(());
            }
            self.stats.lines += 1;
            let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
            match self.parser.line(line) {
                Ok(Some(rec)) => {
                    self.writer.push(rec)?;
                    self.stats.records += 1;
                }
                Ok(None) => self.stats.comments += 1,
                Err(skip) => *self.stats.skipped.entry(skip).or_default() += 1,
            }
        }
    }

    /// Flushes and closes every segment; returns the counters.
    pub fn finish(self) -> Result<ProxyStats, ProxyError> {
        let mut stats = self.stats;
        stats.segments = self.writer.finish()?;
        Ok(stats)
    }
}

/// Reads up to and including the next `\n`, but keeps at most `limit` bytes
/// of it (the rest of an over-long line is consumed and dropped; the kept
/// part exceeds [`MAX_LINE_BYTES`], so the line is counted as too long).
/// Returns the bytes consumed (0 at the end of input).
fn read_line_bounded<R: BufRead>(r: &mut R, out: &mut Vec<u8>, limit: usize) -> std::io::Result<usize> {
    let mut consumed = 0;
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(consumed);
        }
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&avail[..take.min(room)]);
        r.consume(take);
        consumed += take;
        if done {
            return Ok(consumed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(format: ProxyFormat, lines: &[&str]) -> Vec<Result<Option<ProxyRecord>, ProxySkip>> {
        let mut p = ProxyLineParser::new(format).expect("test value");
        lines.iter().map(|l| p.line(l.as_bytes())).collect()
    }

    /// Spot's example layout, built field by field so each position is checked.
    fn spot_line() -> String {
        let f = [
            "2016-05-16",
            "15:17:26",
            "283",
            "10.0.0.7",
            "alice",
            "ORG\\staff",
            "-",
            "OBSERVED",
            "\"News;Media\"",
            "http://ref.example/",
            "200",
            "TCP_NC_MISS",
            "GET",
            "text/html",
            "http",
            "www.example.com",
            "80",
            "/a/b.php",
            "?x=1",
            "php",
            "\"Mozilla/5.0 (X11; Linux)\"",
            "192.0.2.9",
            "375",
            "1046",
            "-",
            "app",
            "op",
        ];
        f.join("\t")
    }

    #[test]
    fn spot_positional_layout() {
        let r = one(ProxyFormat::Spot, &[&spot_line()]).remove(0).expect("test value").expect("test value");
        assert_eq!((r.p_date.as_str(), r.p_time.as_str()), ("2016-05-16", "15:17:26"));
        assert_eq!(r.ts, parse_date_time("2016-05-16", "15:17:26").expect("test value"));
        assert_eq!(r.duration, 283);
        assert_eq!(r.clientip, Some("10.0.0.7".parse().expect("test value")));
        assert_eq!(r.username, "alice");
        assert_eq!(r.authgroup, "ORG\\staff");
        assert_eq!(r.webcat, "News;Media");
        assert_eq!(r.respcode, "200");
        assert_eq!(r.action, "TCP_NC_MISS");
        assert_eq!(r.reqmethod, "GET");
        assert_eq!(r.resconttype, "text/html");
        assert_eq!(r.host, "www.example.com");
        assert_eq!(r.uriextension, "php");
        assert_eq!(r.useragent, "Mozilla/5.0 (X11; Linux)");
        assert_eq!(r.serverip, Some("192.0.2.9".parse().expect("test value")));
        assert_eq!((r.scbytes, r.csbytes), (375, 1046));
        assert_eq!((r.bcappname.as_str(), r.bcappoper.as_str()), ("app", "op"));
        assert_eq!(r.fulluri, "www.example.com/a/b.php?x=1");
    }

    #[test]
    fn full_uri_follows_spot_length_rule() {
        assert_eq!(full_uri("h", "/", "-"), "h");
        assert_eq!(full_uri("h", "/p", "?"), "h/p");
        assert_eq!(full_uri("h", "/p", "?q"), "h/p?q");
    }

    #[test]
    fn auto_detects_each_format() {
        let squid = "1157689312.049   5006 10.105.21.199 TCP_MISS/200 19763 CONNECT login.yahoo.com:443 badeyek DIRECT/209.73.177.115 -";
        let r = one(ProxyFormat::Auto, &[squid]).remove(0).expect("test value").expect("test value");
        assert_eq!(r.ts, 1_157_689_312_049_000_000);
        assert_eq!((r.p_date.as_str(), r.p_time.as_str()), ("2006-09-08", "04:21:52"));
        assert_eq!((r.action.as_str(), r.respcode.as_str()), ("TCP_MISS", "200"));
        assert_eq!((r.urischeme.as_str(), r.host.as_str(), r.uriport.as_str(), r.uripath.as_str()), ("tcp", "login.yahoo.com", "443", "/"));
        assert_eq!(r.fulluri, "login.yahoo.com");
        assert_eq!((r.duration, r.scbytes, r.username.as_str()), (5006, 19763, "badeyek"));

        let spot = spot_line();
        assert!(one(ProxyFormat::Auto, &[&spot]).remove(0).expect("test value").is_some());

        let elff = [
            "#Software: SGOS 6.5",
            "#Fields: date time c-ip cs-method cs-uri sc-status",
            "2020-01-02 03:04:05 198.18.0.1 GET http://a.example:8080/x/y.js?q=1 404",
        ];
        let out = one(ProxyFormat::Auto, &elff);
        assert_eq!(out[0], Ok(None));
        assert_eq!(out[1], Ok(None));
        let r = out[2].clone().expect("test value").expect("test value");
        assert_eq!((r.host.as_str(), r.uriport.as_str(), r.uripath.as_str(), r.uriquery.as_str()), ("a.example", "8080", "/x/y.js", "?q=1"));
        assert_eq!((r.uriextension.as_str(), r.respcode.as_str(), r.useragent.as_str()), ("js", "404", "-"));
        assert_eq!(r.fulluri, "a.example/x/y.js?q=1");

        assert_eq!(one(ProxyFormat::Auto, &["hello world"]), vec![Err(ProxySkip::UnknownFormat)]);
    }

    #[test]
    fn elff_directive_can_change_mid_file() {
        let lines = ["#Fields: date time c-ip", "2020-01-02 03:04:05 198.18.0.1", "#Fields: c-ip date time", "198.18.0.2 2020-01-02 03:04:06"];
        let out = one(ProxyFormat::Elff(None), &lines);
        assert_eq!(out[1].clone().expect("test value").expect("test value").clientip, Some("198.18.0.1".parse().expect("test value")));
        assert_eq!(out[3].clone().expect("test value").expect("test value").clientip, Some("198.18.0.2".parse().expect("test value")));
    }

    #[test]
    fn bad_lines_are_counted_reasons() {
        let elff = ProxyFormat::Elff(None);
        assert_eq!(one(elff.clone(), &["2020-01-02 03:04:05"]), vec![Err(ProxySkip::NoFieldsDirective)]);
        assert_eq!(one(elff.clone(), &["#Fields: date time c-ip", "2020-01-02 03:04:05"])[1], Err(ProxySkip::FieldCount));
        assert_eq!(one(elff.clone(), &["#Fields: date time", "2020-13-02 03:04:05"])[1], Err(ProxySkip::BadTime));
        assert_eq!(one(elff.clone(), &["#Fields: date time", "2020-01-02 24:00:00"])[1], Err(ProxySkip::BadTime));
        assert_eq!(one(elff.clone(), &["#Fields: date time sc-bytes", "2020-01-02 03:04:05 12x"])[1], Err(ProxySkip::BadNumber));
        assert_eq!(one(elff, &["#Fields: date time c-ip", "2020-01-02 03:04:05 \"open"])[1], Err(ProxySkip::UnbalancedQuote));
        assert_eq!(one(ProxyFormat::Spot, &["2020-01-02 03:04:05 too few"]), vec![Err(ProxySkip::FieldCount)]);
        assert_eq!(one(ProxyFormat::Spot, &["x 2020-01-02"]), vec![Err(ProxySkip::NoLeadingDate)]);
        assert_eq!(one(ProxyFormat::Squid, &["99999999999999.1 1 a b c d e f g h"]), vec![Err(ProxySkip::BadTime)]);
        assert_eq!(one(ProxyFormat::Squid, &["1.0 1 a b"]), vec![Err(ProxySkip::FieldCount)]);
        let mut p = ProxyLineParser::new(ProxyFormat::Auto).expect("test value");
        assert_eq!(p.line(b"\xff\xfe"), Err(ProxySkip::NotUtf8));
        assert_eq!(p.line(&vec![b'a'; MAX_LINE_BYTES + 1]), Err(ProxySkip::TooLong));
    }

    proptest::proptest! {
        /// Any bytes in any format: a record, a comment or a counted skip,
        /// never a panic; and a stored record's fulluri starts with its host.
        #[test]
        fn arbitrary_lines_never_panic(lines in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), 1..8), fmt in 0u8..4) {
            let format = [ProxyFormat::Auto, ProxyFormat::Spot, ProxyFormat::Elff(None), ProxyFormat::Squid][fmt as usize].clone();
            let mut p = ProxyLineParser::new(format).expect("test value");
            let _ = p.line(b"#Fields: date time c-ip cs-uri");
            for l in &lines {
                if let Ok(Some(r)) = p.line(l) {
                    proptest::prop_assert!(r.fulluri.starts_with(&r.host));
                }
            }
        }

        /// Structured near-valid lines: a Squid line built from random
        /// fields parses exactly when its time and numbers are valid.
        #[test]
        fn squid_fields_round_trip(secs in 0i64..4_000_000_000, ms in 0i64..1000, elapsed in 0i64..1_000_000, bytes in 0i64..1_000_000_000,
                                   host in "[a-z0-9.-]{1,30}", path in "/[a-zA-Z0-9/._-]{0,40}", user in "[a-z-]{1,8}") {
            let line = format!("{secs}.{ms:03} {elapsed} 198.18.0.1 TCP_MISS/200 {bytes} GET http://{host}{path} {user} DIRECT/198.19.0.1 text/html");
            let mut p = ProxyLineParser::new(ProxyFormat::Squid).expect("test value");
            let r = p.line(line.as_bytes()).expect("test value").expect("test value");
            proptest::prop_assert_eq!(r.ts, secs * 1_000_000_000 + ms * 1_000_000);
            proptest::prop_assert_eq!((r.duration, r.scbytes), (elapsed, bytes));
            proptest::prop_assert_eq!(&r.host, &host);
            proptest::prop_assert_eq!(&r.uripath, &path);
            proptest::prop_assert_eq!(&r.username, &user);
        }
    }

    #[test]
    fn fields_list_needs_a_time() {
        assert!(matches!(ProxyLineParser::new(ProxyFormat::Elff(Some(vec!["c-ip".into()]))), Err(ProxyError::FieldsWithoutTime(_))));
    }

    #[test]
    fn url_splitting() {
        let p = split_url("https://user:pw@[2001:db8::1]:8443/p/q.tar.gz?z", "GET");
        assert_eq!((p.scheme.as_str(), p.host.as_str(), p.port.as_str()), ("https", "2001:db8::1", "8443"));
        assert_eq!((p.path.as_str(), p.query.as_str(), p.extension.as_str()), ("/p/q.tar.gz", "?z", "gz"));
        let p = split_url("http://h.example", "GET");
        assert_eq!((p.port.as_str(), p.path.as_str(), p.query.as_str(), p.extension.as_str()), ("80", "/", "-", "-"));
        let p = split_url("/relative/.hidden", "GET");
        assert_eq!((p.scheme.as_str(), p.host.as_str(), p.extension.as_str()), ("-", "-", "-"));
        // Hostile input never panics.
        for s in ["", "://", "[", "[::1", "http://:", "a:b:c", "é://ü/ö?", "CONNECT"] {
            let _ = split_url(s, "CONNECT");
        }
    }

    #[test]
    fn bounded_line_reader_drops_the_tail_of_long_lines() {
        let mut input = vec![b'x'; 10];
        input.extend_from_slice(b"\nok\n");
        let mut r = std::io::Cursor::new(input);
        let mut out = Vec::new();
        assert_eq!(read_line_bounded(&mut r, &mut out, 4).expect("test value"), 11);
        assert_eq!(out, b"xxxx");
        out.clear();
        assert_eq!(read_line_bounded(&mut r, &mut out, 4).expect("test value"), 3);
        assert_eq!(out, b"ok\n");
        out.clear();
        assert_eq!(read_line_bounded(&mut r, &mut out, 4).expect("test value"), 0);
    }

    #[test]
    fn ingest_writes_readable_segments_and_counts() {
        let dir = tempfile::tempdir().expect("test value");
        let mut ing = ProxyIngestor::new(dir.path(), WriterConfig::default(), ProxyFormat::Auto).expect("test value");
        let text = "#Fields: date time c-ip cs-host sc-status\n2020-01-02 03:04:05 198.18.0.1 a.example 200\nbroken\n2020-01-02 04:00:00 198.18.0.2 b.example 302\n";
        ing.ingest_reader(Path::new("test.log"), std::io::Cursor::new(text)).expect("test value");
        let stats = ing.finish().expect("test value");
        assert_eq!((stats.lines, stats.comments, stats.records, stats.skipped_total()), (4, 1, 2, 1));
        assert_eq!(stats.skipped.get(&ProxySkip::FieldCount), Some(&1));
        assert_eq!(stats.segments.len(), 2, "two hourly partitions");
        let range = osprey_segment::partition::TimeRange::default();
        let (recs, skipped) = osprey_segment::partition::read_all::<ProxyRecord>(dir.path(), range).expect("test value");
        assert!(skipped.is_empty());
        let hosts: Vec<&str> = recs.iter().map(|r| r.host.as_str()).collect();
        assert_eq!(hosts, ["a.example", "b.example"]);
    }
}
