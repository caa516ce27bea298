//! A strict reader of the Prometheus text exposition format (version 0.0.4), written from the
//! format's rules rather than from our encoder: what a scrape by Prometheus would accept, with
//! the checks Prometheus makes (names, label syntax and escapes, one TYPE per family before its
//! samples, sample names that belong to their family, no duplicate series, cumulative histogram
//! buckets ending in `+Inf` equal to `_count`). And a scraper for a server's /metrics.

use std::collections::{BTreeMap, BTreeSet};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A metric family: its TYPE, HELP and samples.
#[derive(Debug, Clone, Default)]
pub struct Family {
    pub kind: String,
    pub help: Option<String>,
    pub samples: Vec<Sample>,
}

/// A whole exposition, by family name.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    pub families: BTreeMap<String, Family>,
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        other => other
            .parse::<f64>()
            .map_err(|_| format!("value {other:?} is not a number")),
    }
}

/// `{a="x",b="y\"z"}` → labels; the text after the closing brace.
fn parse_labels(text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = text.strip_prefix('{').ok_or("labels must start with {")?;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = rest[..eq].trim();
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value must be quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?} in label value")),
                },
                Some((i, '"')) => break i,
                Some((_, '\n')) => return Err("raw newline in label value".into()),
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = &rest[end + 1..];
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("labels must be separated by commas".into());
        }
    }
}

/// Which family a sample name belongs to, given the family's type.
fn belongs(family: &str, kind: &str, sample: &str) -> bool {
    match kind {
        "histogram" => [
            format!("{family}_bucket"),
            format!("{family}_sum"),
            format!("{family}_count"),
        ]
        .contains(&sample.to_string()),
        "summary" => {
            sample == family
                || sample == format!("{family}_sum")
                || sample == format!("{family}_count")
        }
        _ => sample == family,
    }
}

impl Exposition {
    /// Parses `text`, or says which line breaks which rule.
    pub fn parse(text: &str) -> Result<Exposition, String> {
        let mut out = Exposition::default();
        let mut current: Option<String> = None;
        let mut series = BTreeSet::new();
        for (n, line) in text.lines().enumerate() {
            let fail = |why: String| format!("line {}: {why}: {line:?}", n + 1);
            if line.trim().is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let words: Vec<&str> = comment.trim_start().splitn(3, ' ').collect();
                match words.as_slice() {
                    ["TYPE", name, kind] => {
                        if !is_metric_name(name) {
                            return Err(fail("bad metric name".into()));
                        }
                        if !["counter", "gauge", "histogram", "summary", "untyped"].contains(kind) {
                            return Err(fail(format!("unknown type {kind}")));
                        }
                        let family = out.families.entry(name.to_string()).or_default();
                        if !family.kind.is_empty() || !family.samples.is_empty() {
                            return Err(fail("TYPE after samples or twice".into()));
                        }
                        family.kind = kind.to_string();
                        current = Some(name.to_string());
                    }
                    ["HELP", name, ..] => {
                        if !is_metric_name(name) {
                            return Err(fail("bad metric name".into()));
                        }
                        let family = out.families.entry(name.to_string()).or_default();
                        if family.help.is_some() {
                            return Err(fail("HELP twice".into()));
                        }
                        family.help = Some(words.get(2).unwrap_or(&"").to_string());
                        current = Some(name.to_string());
                    }
                    _ => {} // other comments are allowed
                }
                continue;
            }
            let name_end = line
                .find(['{', ' '])
                .ok_or_else(|| fail("sample without value".into()))?;
            let name = &line[..name_end];
            if !is_metric_name(name) {
                return Err(fail("bad metric name".into()));
            }
            let (labels, rest) = if line[name_end..].starts_with('{') {
                parse_labels(&line[name_end..]).map_err(&fail)?
            } else {
                (BTreeMap::new(), &line[name_end..])
            };
            let mut fields = rest.split_whitespace();
            let value = parse_value(fields.next().ok_or_else(|| fail("no value".into()))?)
                .map_err(&fail)?;
            if let Some(ts) = fields.next() {
                ts.parse::<i64>()
                    .map_err(|_| fail("timestamp is not an integer".into()))?;
            }
            if fields.next().is_some() {
                return Err(fail("text after the timestamp".into()));
            }
            let family_name = current
                .clone()
                .ok_or_else(|| fail("sample before any TYPE".into()))?;
            let family = out.families.get_mut(&family_name).expect("current family");
            if !belongs(&family_name, &family.kind, name) {
                return Err(fail(format!(
                    "sample does not belong to family {family_name} ({})",
                    family.kind
                )));
            }
            let key = format!("{name}{labels:?}");
            if !series.insert(key) {
                return Err(fail("duplicate series".into()));
            }
            family.samples.push(Sample {
                name: name.to_string(),
                labels,
                value,
            });
        }
        out.check_histograms()?;
        Ok(out)
    }

    fn check_histograms(&self) -> Result<(), String> {
        for (name, family) in &self.families {
            if family.kind != "histogram" {
                continue;
            }
            // Group buckets by their labels other than `le`.
            let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
            for s in family
                .samples
                .iter()
                .filter(|s| s.name.ends_with("_bucket"))
            {
                let le = s
                    .labels
                    .get("le")
                    .ok_or_else(|| format!("{name}: bucket without le"))?;
                let mut rest = s.labels.clone();
                rest.remove("le");
                groups
                    .entry(format!("{rest:?}"))
                    .or_default()
                    .push((parse_value(le)?, s.value));
            }
            for (labels, mut buckets) in groups {
                buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                if buckets.windows(2).any(|w| w[1].1 < w[0].1) {
                    return Err(format!("{name}{labels}: buckets are not cumulative"));
                }
                let last = buckets.last().expect("a bucket");
                if last.0 != f64::INFINITY {
                    return Err(format!("{name}{labels}: no +Inf bucket"));
                }
                let count = family
                    .samples
                    .iter()
                    .find(|s| {
                        let mut l = s.labels.clone();
                        l.remove("le");
                        s.name == format!("{name}_count") && format!("{l:?}") == labels
                    })
                    .ok_or_else(|| format!("{name}{labels}: no _count"))?;
                if count.value != last.1 {
                    return Err(format!(
                        "{name}{labels}: +Inf bucket {} != count {}",
                        last.1, count.value
                    ));
                }
            }
        }
        Ok(())
    }

    /// The sum of samples named `name` whose labels include every pair given.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples(name, labels).iter().map(|s| s.value).sum()
    }

    /// Samples named `name` whose labels include every pair given.
    pub fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<Sample> {
        self.families
            .values()
            .flat_map(|f| f.samples.iter())
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .cloned()
            .collect()
    }

    /// Every sample name a query may use: each family's own and, for histograms and summaries,
    /// the `_bucket`/`_sum`/`_count` series.
    pub fn series_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for (name, family) in &self.families {
            match family.kind.as_str() {
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
                "summary" => {
                    names.insert(name.clone());
                    names.insert(format!("{name}_sum"));
                    names.insert(format!("{name}_count"));
                }
                _ => {
                    names.insert(name.clone());
                }
            }
        }
        names
    }
}

/// GET http://`addr`/metrics, parsed strictly. Panics with the reason when the text breaks a rule
/// or the answer is not 200 with the text format's content type.
pub async fn scrape(addr: std::net::SocketAddr) -> Exposition {
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200, "GET /metrics");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("text/plain") && content_type.contains("version=0.0.4"),
        "content type {content_type:?}"
    );
    let text = response.text().await.expect("body");
    Exposition::parse(&text).unwrap_or_else(|why| panic!("/metrics does not parse: {why}\n{text}"))
}
