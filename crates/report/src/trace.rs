//! Converting a Coracle trace (JSON Lines, `docs/results.md#the-trace`) for standard viewers:
//!
//! * **Perfetto / chrome://tracing**: the Trace Event JSON format. One track (thread) per node,
//!   named after it; the node's role as a sequence of complete events ("follower", "leader",
//!   ...); instant events for messages received, timers, crashes, recoveries, timeline actions,
//!   client requests and completions; flow arrows from each send to its receipt. Timestamps are
//!   microseconds of simulated time.
//! * **ShiViz**: a log with vector clocks. Every event is two lines: a description, then
//!   `NODE {"NODE": n, ...}`. Sends are matched to receipts by sender, receiver and message
//!   (first in, first out); the receiver's clock merges the sender's. Parse it in ShiViz with
//!   the regular expression [`SHIVIZ_REGEX`].

use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// The regular expression to paste into ShiViz for [`shiviz`] logs.
pub const SHIVIZ_REGEX: &str = r"(?<event>.*)\n(?<host>\S*) (?<clock>{.*})";

/// `text` without a last line cut off in the middle (a run killed while writing its trace
/// leaves one, without a final newline), and a warning saying so; a complete trace is
/// returned whole.
pub fn complete_lines(text: &str) -> (&str, Option<String>) {
    if text.is_empty() || text.ends_with('\n') {
        return (text, None);
    }
    let cut = text.rfind('\n').map_or(0, |i| i + 1);
    let last = &text[cut..];
    if last.trim().is_empty() || serde_json::from_str::<Value>(last).is_ok() {
        return (text, None);
    }
    let line = text[..cut].lines().count() + 1;
    (
        &text[..cut],
        Some(format!(
            "line {line} is cut off (the run was stopped while writing its trace): it is left \
             out, and so is everything the run would have written after it"
        )),
    )
}

/// The trace's records; an error names the first line that is not one, or says the file has
/// none (a results file or a scenario passed by mistake).
fn parse(text: &str) -> Result<Vec<Value>, String> {
    let records: Vec<Value> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            // A results or scenario file (pretty-printed JSON) fails on its first line: say
            // what a trace is, not only what JSON found.
            const TRACE: &str =
                "expected one trace record per line (the JSON Lines of coracle run --trace)";
            let v: Value = serde_json::from_str(l)
                .map_err(|e| format!("line {}: {TRACE}, found invalid JSON: {e}", i + 1))?;
            if v.get("t").and_then(|t| t.as_f64()).is_none() || v.get("kind").is_none() {
                return Err(format!(
                    "line {}: {TRACE}, each with \"t\" and \"kind\"",
                    i + 1
                ));
            }
            Ok(v)
        })
        .collect::<Result<_, _>>()?;
    if records.is_empty() {
        return Err("no trace records (expected the JSON Lines of coracle run --trace)".into());
    }
    Ok(records)
}

fn name(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn msg_kind(m: &Value) -> String {
    match m {
        // An internally tagged message names its kind in `type`, even with no other field
        // (the dummy protocol's `{"type": "hello"}`); an externally tagged one is a single key.
        Value::Object(o) if o.len() == 1 && !o.contains_key("type") && !o.contains_key("kind") => {
            o.keys().next().cloned().unwrap_or_default()
        }
        Value::Object(o) => o
            .get("type")
            .or_else(|| o.get("kind"))
            .map(name)
            .unwrap_or_else(|| "message".into()),
        Value::String(s) => s.clone(),
        _ => "message".into(),
    }
}

/// Client operations in a trace: (client, completion time in ms, latency in ms), in order of
/// completion. A request's record and its completion are matched by client and request id;
/// latency counts from the request's `arrival` (when the operation arose: in an open loop it
/// may wait in its client's queue first), as the results' client latency does.
pub fn client_latencies(text: &str) -> Result<Vec<(String, f64, f64)>, String> {
    let mut started: HashMap<(String, String), f64> = HashMap::new();
    let mut ops = Vec::new();
    for v in parse(text)? {
        let node = name(&v["node"]);
        let id = v["id"].to_string();
        let t = v["t"].as_f64().unwrap_or(0.0);
        match v["kind"].as_str() {
            Some("request") => {
                let arrival = v["arrival"].as_f64().unwrap_or(t);
                started.insert((node, id), arrival);
            }
            Some("complete") => {
                if let Some(s) = started.remove(&(node.clone(), id)) {
                    ops.push((node, t, t - s));
                }
            }
            _ => {}
        }
    }
    Ok(ops)
}

/// Converts a trace to Trace Event JSON (Perfetto, chrome://tracing).
pub fn perfetto(text: &str) -> Result<String, String> {
    let recs = parse(text)?;
    let mut tids: BTreeMap<String, usize> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut tid = |n: &str, order: &mut Vec<String>| -> usize {
        let k = tids.len();
        *tids.entry(n.to_string()).or_insert_with(|| {
            order.push(n.to_string());
            k + 1
        })
    };
    let us = |r: &Value| (r["t"].as_f64().unwrap_or(0.0) * 1000.0 * 1000.0).round() / 1000.0;
    let mut events: Vec<Value> = Vec::new();
    let mut role: HashMap<String, (String, f64)> = HashMap::new();
    let mut flows: HashMap<(String, String, String), VecDeque<u64>> = HashMap::new();
    let mut last_flow: HashMap<(String, String, String), u64> = HashMap::new();
    // Flow ids of traces without `pkt`, apart from packet numbers (and below 2^53, so that
    // viewers that read ids as doubles still tell them apart).
    let mut next_flow = 1u64 << 52;
    // By flow: the send's slice (its index in `events`) and whether a copy has arrived, so
    // that the second copy of a duplicated packet gets an arrow of its own (a flow id binds
    // one slice to one other).
    let mut sent_at: HashMap<u64, (usize, bool)> = HashMap::new();
    let end = recs.last().map(us).unwrap_or(0.0);
    let close = |events: &mut Vec<Value>, node: &str, tid: usize, r: &str, from: f64, to: f64| {
        events.push(json!({"name": r, "cat": "role", "ph": "X", "ts": from, "dur": (to - from).max(0.0), "pid": 1, "tid": tid, "args": {"node": node}}));
    };
    for r in &recs {
        let kind = r["kind"].as_str().unwrap_or("");
        let ts = us(r);
        let node = name(&r["node"]);
        let t = if node.is_empty() {
            0
        } else {
            tid(&node, &mut order)
        };
        match kind {
            "state" => {
                let new_role = r["role"].as_str().unwrap_or("?").to_string();
                let label = match r["term"].as_u64() {
                    // Clients and hubs have no term of their own.
                    Some(term) if !matches!(new_role.as_str(), "client" | "hub") => {
                        format!("{new_role} (term {term})")
                    }
                    _ => new_role.clone(),
                };
                if let Some((old, since)) = role.get(&node).cloned() {
                    if old == label {
                        continue;
                    }
                    close(&mut events, &node, t, &old, since, ts);
                }
                role.insert(node.clone(), (label, ts));
            }
            "send" => {
                let to = name(&r["to"]);
                // A trace names each message (`pkt`), and receipts and drops name it too; an
                // older trace is matched by content instead (oldest unmatched send first).
                let id = match r["pkt"].as_u64() {
                    Some(pkt) => pkt,
                    None => {
                        let key = (node.clone(), to.clone(), r["msg"].to_string());
                        let id = next_flow;
                        next_flow += 1;
                        flows.entry(key).or_default().push_back(id);
                        id
                    }
                };
                let k = msg_kind(&r["msg"]);
                sent_at.insert(id, (events.len(), false));
                // A zero-length slice carrying the flow (`bind_id`, flow v2): Perfetto binds
                // a flow to a slice, and an instant event with a v1 flow beside it bound the
                // arrow to the enclosing role span instead.
                events.push(json!({"name": format!("send {k} → {to}"), "cat": "send", "ph": "X", "dur": 0, "ts": ts, "pid": 1, "tid": t, "bind_id": id, "flow_out": true, "args": {"msg": r["msg"]}}));
            }
            "recv" | "drop" => {
                let (from, to) = if kind == "recv" {
                    (name(&r["from"]), node.clone())
                } else {
                    (name(&r["from"]), name(&r["to"]))
                };
                let key = (from.clone(), to.clone(), r["msg"].to_string());
                // The send of this packet; without `pkt`, the oldest unmatched send of this
                // message, and a second copy of a duplicated packet (none left) gets an arrow
                // from the send matched last.
                let id = match r["pkt"].as_u64() {
                    Some(pkt) => Some(pkt),
                    None => match flows.get_mut(&key).and_then(|q| q.pop_front()) {
                        Some(id) => {
                            last_flow.insert(key, id);
                            Some(id)
                        }
                        None if kind == "recv" => last_flow.get(&key).copied(),
                        None => None,
                    },
                };
                let k = msg_kind(&r["msg"]);
                // A later copy of a packet already received: a send slice of its own at the
                // original send, with a new flow id.
                let id = match id.and_then(|id| sent_at.get_mut(&id).map(|e| (id, e))) {
                    Some((id, e)) if kind == "recv" => {
                        if e.1 {
                            let copy = next_flow;
                            next_flow += 1;
                            let mut slice = events[e.0].clone();
                            slice["name"] = json!(format!("{} (copy)", name(&slice["name"])));
                            slice["bind_id"] = json!(copy);
                            events.push(slice);
                            Some(copy)
                        } else {
                            e.1 = true;
                            Some(id)
                        }
                    }
                    _ => id,
                };
                if kind == "recv" {
                    let mut e = json!({"name": format!("recv {k} ← {from}"), "cat": "recv", "ph": "X", "dur": 0, "ts": ts, "pid": 1, "tid": t, "args": {"msg": r["msg"]}});
                    if let Some(id) = id {
                        e["bind_id"] = json!(id);
                        e["flow_in"] = json!(true);
                    }
                    events.push(e);
                } else {
                    events.push(json!({"name": format!("drop {k} {from} → {to} ({})", name(&r["cause"])), "cat": "drop", "ph": "i", "s": "t", "ts": ts, "pid": 1, "tid": t}));
                }
            }
            "action" => {
                let what = name(&r["action"]);
                events.push(json!({"name": format!("action {what}"), "cat": "action", "ph": "i", "s": if node.is_empty() { "g" } else { "t" }, "ts": ts, "pid": 1, "tid": t, "args": r}));
            }
            "set_timer" | "cancel_timer" | "persist" | "applied" => {}
            "end" => {
                events.push(json!({"name": format!("end ({})", name(&r["reason"])), "cat": "end", "ph": "i", "s": "g", "ts": ts, "pid": 1, "tid": 0, "args": r}));
            }
            other => {
                let label = match other {
                    "timer" => format!("timer {}", name(&r["timer"])),
                    "request" => format!("request {}", name(&r["id"])),
                    "complete" => format!("complete {}", name(&r["id"])),
                    "violation" => format!("VIOLATION {}", name(&r["invariant"])),
                    o => o.to_string(),
                };
                events.push(json!({"name": label, "cat": other, "ph": "i", "s": "t", "ts": ts, "pid": 1, "tid": t, "args": r}));
            }
        }
    }
    let mut open: Vec<(String, (String, f64))> = role.into_iter().collect();
    open.sort_by(|a, b| a.0.cmp(&b.0));
    for (node, (label, since)) in open {
        let t = tids[&node];
        close(&mut events, &node, t, &label, since, end);
    }
    let mut meta =
        vec![json!({"name": "process_name", "ph": "M", "pid": 1, "args": {"name": "coracle"}})];
    for n in &order {
        let t = tids[n];
        meta.push(
            json!({"name": "thread_name", "ph": "M", "pid": 1, "tid": t, "args": {"name": n}}),
        );
        meta.push(json!({"name": "thread_sort_index", "ph": "M", "pid": 1, "tid": t, "args": {"sort_index": t}}));
    }
    meta.extend(events);
    let doc = json!({"displayTimeUnit": "ms", "traceEvents": meta});
    Ok(serde_json::to_string(&doc).unwrap_or_default() + "\n")
}

/// ShiViz host names: ShiViz reads a host as a run of non-blank characters, so blanks in a
/// node id become `_`. An id that needs no change keeps its name; a renamed id that would then
/// read like another id (`node a` beside a node called `node_a`) gets `~2`, `~3`, … instead.
#[derive(Default)]
struct Hosts {
    by_id: HashMap<String, String>,
    taken: std::collections::HashSet<String>,
}

impl Hosts {
    /// The hosts of every node id in `recs` (`node`, `from`, `to`): ids without blanks first,
    /// as they are, then the others renamed, in order of appearance.
    fn of_records(recs: &[Value]) -> Self {
        let mut ids: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for r in recs {
            for k in ["node", "from", "to"] {
                let id = name(&r[k]);
                if !id.is_empty() && seen.insert(id.clone()) {
                    ids.push(id);
                }
            }
        }
        let mut h = Hosts::default();
        for id in ids.iter().filter(|id| !needs_renaming(id)) {
            h.taken.insert(id.clone());
            h.by_id.insert(id.clone(), id.clone());
        }
        for id in ids.into_iter().filter(|id| needs_renaming(id)) {
            h.of(id);
        }
        h
    }

    fn of(&mut self, id: String) -> String {
        if let Some(h) = self.by_id.get(&id) {
            return h.clone();
        }
        let base: String = id
            .chars()
            .map(|c| if c.is_whitespace() { '_' } else { c })
            .collect();
        let base = if base.is_empty() {
            "_".to_string()
        } else {
            base
        };
        let mut h = base.clone();
        let mut k = 1;
        while self.taken.contains(&h) {
            k += 1;
            h = format!("{base}~{k}");
        }
        self.taken.insert(h.clone());
        self.by_id.insert(id, h.clone());
        h
    }
}

/// Whether ShiViz could not read `id` as a host as it is.
fn needs_renaming(id: &str) -> bool {
    id.is_empty() || id.chars().any(char::is_whitespace)
}

/// Converts a trace to a ShiViz log with vector clocks.
pub fn shiviz(text: &str) -> Result<String, String> {
    let recs = parse(text)?;
    let mut hosts = Hosts::of_records(&recs);
    let mut clocks: HashMap<String, Map<String, Value>> = HashMap::new();
    let mut pending: HashMap<(String, String, String), VecDeque<Map<String, Value>>> =
        HashMap::new();
    // By packet number (`pkt`): the sender's clock and the receipts or drops still to come
    // (one, plus one per duplicate made on the way).
    let mut by_pkt: HashMap<u64, (Map<String, Value>, u32)> = HashMap::new();
    let mut out = String::new();
    let tick = |clocks: &mut HashMap<String, Map<String, Value>>, n: &str| {
        let c = clocks.entry(n.to_string()).or_default();
        let v = c.get(n).and_then(|x| x.as_u64()).unwrap_or(0) + 1;
        c.insert(n.to_string(), json!(v));
        c.clone()
    };
    for r in &recs {
        let kind = r["kind"].as_str().unwrap_or("");
        let node = name(&r["node"]);
        if node.is_empty()
            || matches!(
                kind,
                "set_timer" | "cancel_timer" | "persist" | "drop" | "duplicate"
            )
        {
            if let Some(pkt) = r["pkt"].as_u64().filter(|_| kind != "persist") {
                if kind == "duplicate" {
                    if let Some(e) = by_pkt.get_mut(&pkt) {
                        e.1 += 1;
                    }
                } else if kind == "drop" {
                    match by_pkt.get_mut(&pkt) {
                        Some(e) if e.1 > 1 => e.1 -= 1,
                        Some(_) => {
                            by_pkt.remove(&pkt);
                        }
                        None => {}
                    }
                }
            } else if kind == "drop" {
                let key = (
                    hosts.of(name(&r["from"])),
                    hosts.of(name(&r["to"])),
                    r["msg"].to_string(),
                );
                if let Some(q) = pending.get_mut(&key) {
                    q.pop_front();
                }
            }
            continue;
        }
        let node = hosts.of(node);
        let t = r["t"].as_f64().unwrap_or(0.0);
        let desc = match kind {
            "send" => {
                let to = hosts.of(name(&r["to"]));
                let c = tick(&mut clocks, &node);
                match r["pkt"].as_u64() {
                    Some(pkt) => {
                        by_pkt.insert(pkt, (c.clone(), 1));
                    }
                    None => pending
                        .entry((node.clone(), to.clone(), r["msg"].to_string()))
                        .or_default()
                        .push_back(c.clone()),
                }
                out.push_str(&format!(
                    "{t} ms send {} to {to} {}\n{node} {}\n",
                    msg_kind(&r["msg"]),
                    r["msg"],
                    Value::Object(c)
                ));
                continue;
            }
            "recv" => {
                let from = hosts.of(name(&r["from"]));
                let key = (from.clone(), node.clone(), r["msg"].to_string());
                let sent = match r["pkt"].as_u64() {
                    Some(pkt) => match by_pkt.get_mut(&pkt) {
                        Some(e) if e.1 > 1 => {
                            e.1 -= 1;
                            Some(e.0.clone())
                        }
                        Some(_) => by_pkt.remove(&pkt).map(|e| e.0),
                        None => None,
                    },
                    None => pending.get_mut(&key).and_then(|q| q.pop_front()),
                };
                if let Some(sc) = sent {
                    let c = clocks.entry(node.clone()).or_default();
                    for (k, v) in sc {
                        let a = c.get(&k).and_then(|x| x.as_u64()).unwrap_or(0);
                        let b = v.as_u64().unwrap_or(0);
                        c.insert(k, json!(a.max(b)));
                    }
                }
                format!("recv {} from {from} {}", msg_kind(&r["msg"]), r["msg"])
            }
            "state" => format!(
                "state {} term {} leader {}",
                name(&r["role"]),
                name(&r["term"]),
                name(&r["leader"])
            ),
            "timer" => format!("timer {}", name(&r["timer"])),
            "action" => format!("action {}", name(&r["action"])),
            other => {
                let mut m = r.as_object().cloned().unwrap_or_default();
                m.remove("t");
                m.remove("kind");
                m.remove("node");
                format!("{other} {}", Value::Object(m))
            }
        };
        let desc = desc.replace(['\n', '\r'], " ");
        let c = tick(&mut clocks, &node);
        out.push_str(&format!("{t} ms {desc}\n{node} {}\n", Value::Object(c)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = r#"{"t":0.0,"node":"a","kind":"start"}
{"t":0.0,"node":"b","kind":"start"}
{"t":1.0,"node":"a","kind":"state","role":"leader","term":1,"leader":"a"}
{"t":1.0,"node":"a","kind":"send","to":"b","msg":{"Ping":{"n":1}}}
{"t":2.5,"node":"b","kind":"recv","from":"a","msg":{"Ping":{"n":1}}}
{"t":3.0,"node":"b","kind":"send","to":"a","msg":{"Pong":{"n":1}}}
{"t":4.0,"node":"a","kind":"recv","from":"b","msg":{"Pong":{"n":1}}}
"#;

    #[test]
    fn message_kinds_of_tagged_and_untagged_messages() {
        assert_eq!(msg_kind(&serde_json::json!({"type": "hello"})), "hello");
        assert_eq!(
            msg_kind(&serde_json::json!({"type": "append_entries", "term": 2})),
            "append_entries"
        );
        assert_eq!(msg_kind(&serde_json::json!({"Ping": {"n": 1}})), "Ping");
    }

    #[test]
    fn perfetto_has_tracks_and_flows() {
        let s = perfetto(TRACE).unwrap();
        let v: Value = serde_json::from_str(&s).unwrap();
        let ev = v["traceEvents"].as_array().unwrap();
        let names: Vec<&str> = ev
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
        // Flow v2: the send and the receipt are slices bound by one id.
        let send = ev.iter().find(|e| e["cat"] == "send").unwrap();
        let recv = ev.iter().find(|e| e["cat"] == "recv").unwrap();
        assert_eq!(
            (&send["ph"], &send["flow_out"]),
            (&json!("X"), &json!(true))
        );
        assert_eq!((&recv["ph"], &recv["flow_in"]), (&json!("X"), &json!(true)));
        assert_eq!(send["bind_id"], recv["bind_id"]);
        // Both copies of a duplicated packet get an arrow from its send.
        let dup = format!(
            "{TRACE}{}",
            r#"{"t":4.5,"node":"a","kind":"recv","from":"b","msg":{"Pong":{"n":1}}}
"#
        );
        let v: Value = serde_json::from_str(&perfetto(&dup).unwrap()).unwrap();
        let pongs: Vec<&Value> = v["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["cat"] == "recv" && e["name"].as_str().unwrap().contains("Pong"))
            .collect();
        assert_eq!(pongs.len(), 2);
        // A flow id binds one slice to one other: the second copy's arrow starts at a copy of
        // the send slice, at the same time on the same track.
        assert!(pongs[0]["bind_id"].is_u64() && pongs[0]["bind_id"] != pongs[1]["bind_id"]);
        let sends: Vec<&Value> = v["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["cat"] == "send" && e["name"].as_str().unwrap().contains("Pong"))
            .collect();
        assert_eq!(sends.len(), 2);
        assert_eq!(sends[0]["bind_id"], pongs[0]["bind_id"]);
        assert_eq!(sends[1]["bind_id"], pongs[1]["bind_id"]);
        assert_eq!(sends[1]["name"], "send Pong → a (copy)");
        assert_eq!(
            (&sends[0]["ts"], &sends[0]["tid"]),
            (&sends[1]["ts"], &sends[1]["tid"])
        );
        assert!(
            ev.iter()
                .any(|e| e["ph"] == "X" && e["name"] == "leader (term 1)")
        );
        // Microseconds.
        assert!(ev.iter().any(|e| e["ts"] == json!(2500.0)));
    }

    /// ShiViz reads a host as non-blank characters: ids with blanks (even a newline) are
    /// renamed, distinctly, and every second line is `host {clock}` with the clock's own key.
    #[test]
    fn shiviz_hosts_have_no_blanks() {
        let trace = r#"{"t":0.0,"node":"node a","kind":"start"}
{"t":0.0,"node":"node_a","kind":"start"}
{"t":1.0,"node":"node a","kind":"send","to":"x\ny","msg":{"Ping":{"n":1}}}
{"t":2.0,"node":"x\ny","kind":"recv","from":"node a","msg":{"Ping":{"n":1}}}
{"t":3.0,"node":"x\ny","kind":"state","role":"leader","term":1,"leader":"x\ny"}
"#;
        let log = shiviz(trace).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 10, "{log}");
        let hosts: Vec<&str> = lines
            .iter()
            .skip(1)
            .step_by(2)
            .map(|l| l.split_once(' ').unwrap().0)
            .collect();
        // `node_a` needs no change and keeps its name, though `node a` appears first.
        assert_eq!(hosts, ["node_a~2", "node_a", "node_a~2", "x_y", "x_y"]);
        for l in lines.iter().skip(1).step_by(2) {
            let (host, clock) = l.split_once(' ').unwrap();
            let c: Value = serde_json::from_str(clock).unwrap();
            assert!(c.get(host).is_some(), "{l}");
        }
        // The receive merged the sender's clock under its host name.
        assert!(lines[7].contains(r#""node_a~2":2"#), "{}", lines[7]);
    }

    #[test]
    fn shiviz_vector_clocks_merge_on_receive() {
        let s = shiviz(TRACE).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        // b's receive merges a's clock at the send ({"a":3}: start, state, send).
        let recv = lines.iter().position(|l| l.contains("recv Ping")).unwrap();
        let clock: Value = serde_json::from_str(lines[recv + 1].trim_start_matches("b ")).unwrap();
        assert_eq!(clock["a"], json!(3));
        assert_eq!(clock["b"], json!(2));
        assert!(perfetto("not json").is_err());
    }

    #[test]
    fn a_last_line_cut_off_is_left_out_with_a_warning() {
        let whole = "{\"t\":0.0,\"node\":\"a\",\"kind\":\"start\"}\n";
        assert_eq!(complete_lines(whole), (whole, None));
        let cut = format!("{whole}{{\"t\":1.0,\"node\":\"a\",\"ki");
        let (text, warning) = complete_lines(&cut);
        assert_eq!(text, whole);
        assert!(warning.unwrap().starts_with("line 2 is cut off"));
        // A last record without its newline is complete.
        let (text, warning) = complete_lines(whole.trim_end());
        assert_eq!((text, warning), (whole.trim_end(), None));
    }

    #[test]
    fn clients_have_no_term_and_the_run_end_closes_the_spans() {
        let t = r#"{"t":0.0,"node":"c1","kind":"state","role":"client","term":0}
{"t":0.0,"node":"a","kind":"state","role":"follower","term":0}
{"t":1.0,"node":"a","kind":"timer","timer":"election"}
{"t":10.0,"kind":"end","reason":"horizon","events":3}
"#;
        let v: Value = serde_json::from_str(&perfetto(t).unwrap()).unwrap();
        let spans: Vec<(&str, f64)> = v["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["cat"] == "role")
            .map(|e| (e["name"].as_str().unwrap(), e["dur"].as_f64().unwrap()))
            .collect();
        assert_eq!(spans, [("follower (term 0)", 10000.0), ("client", 10000.0)]);
        assert!(shiviz(t).unwrap().lines().all(|l| !l.contains("end")));
    }
}
