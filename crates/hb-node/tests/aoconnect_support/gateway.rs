//! A stand-in for an Arweave gateway's GraphQL endpoint, on 127.0.0.1, for
//! the aoconnect interop tests (SPEC §10.6): it answers the look-ups
//! aoconnect 0.0.98 makes (tests/aoconnect/EXCHANGES.md) from data the test
//! registers, so nothing leaves the machine.
//!
//! - `transactions(ids: …, tags: …)` (a module's tags before a legacy
//!   spawn; a process's tags when aoconnect locates its scheduler):
//!   registered transactions, else, when the stand-in indexes a node, the
//!   node's `GET /processes/{id}` (SPEC §10.4), as a gateway would find an
//!   item a scheduler unit uploaded. Tag filters apply.
//! - `transactions(owners: […], tags: [… Type: Scheduler-Location …])`: a
//!   `Scheduler-Location` record (`Url`, `Time-To-Live`) for an owner whose
//!   URL the test registered.
//!
//! Any other request is a 400 with a GraphQL `errors` list. Every request
//! is recorded with what it was taken for, so tests can assert which
//! look-ups a client made.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use parking_lot::Mutex;
use serde_json::{json, Value};

/// A transaction tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub name: String,
    pub value: String,
}

impl Tag {
    pub fn new(name: &str, value: &str) -> Tag {
        Tag {
            name: name.to_string(),
            value: value.to_string(),
        }
    }
}

/// What the gateway knows of one transaction (or bundled item).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub id: String,
    /// The owner's address.
    pub owner: String,
    pub tags: Vec<Tag>,
}

/// A tag filter of a `transactions` query: the tag `name` with any of `values`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagFilter {
    pub name: String,
    pub values: Vec<String>,
}

/// What a GraphQL request asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// `transactions(ids: …)`, with its tag filters.
    ByIds {
        ids: Vec<String>,
        filters: Vec<TagFilter>,
    },
    /// The newest `Scheduler-Location` record of `owner`.
    SchedulerLocation { owner: String },
}

/// One request the gateway received: what it was taken for (or why it was
/// refused) and how many edges it answered.
#[derive(Clone, Debug)]
pub struct Received {
    pub lookup: Result<Lookup, String>,
    pub edges: usize,
}

#[derive(Default)]
struct Data {
    transactions: HashMap<String, Transaction>,
    schedulers: HashMap<String, String>,
    index: Option<String>,
    received: Vec<Received>,
}

/// The `Time-To-Live` of the Scheduler-Location records (ms), as the ao
/// scheduler units publish.
pub const LOCATION_TTL_MS: &str = "3600000";

/// The stand-in gateway, serving until [`Gateway::stop`].
pub struct Gateway {
    url: String,
    data: Arc<Mutex<Data>>,
    server: ServerHandle,
}

impl Gateway {
    /// Starts the stand-in on 127.0.0.1 (a free port), inside the current
    /// actix system. With `index`, ID look-ups it has no registration for
    /// go to that node's `GET /processes/{id}`.
    pub fn start(index: Option<String>) -> Gateway {
        let data = Arc::new(Mutex::new(Data {
            index,
            ..Data::default()
        }));
        let shared = web::Data::from(Arc::clone(&data));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/graphql", web::post().to(graphql))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .expect("the stand-in gateway binds a loopback port");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Gateway {
            url: format!("http://{addr}"),
            data,
            server: handle,
        }
    }

    /// `http://127.0.0.1:<port>`: aoconnect's `GATEWAY_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Registers a transaction (replacing one with the same ID).
    pub fn add_transaction(&self, tx: Transaction) {
        self.data.lock().transactions.insert(tx.id.clone(), tx);
    }

    /// Registers a module with the tags aoconnect's legacy `spawn` checks
    /// (`Data-Protocol: ao`, `Type: Module`, `Module-Format`,
    /// `Input-Encoding`, `Output-Encoding`).
    pub fn add_module(&self, id: &str, owner: &str) {
        self.add_transaction(Transaction {
            id: id.to_string(),
            owner: owner.to_string(),
            tags: vec![
                Tag::new("Data-Protocol", "ao"),
                Tag::new("Variant", "ao.TN.1"),
                Tag::new("Type", "Module"),
                Tag::new(
                    "Module-Format",
                    "wasm64-unknown-emscripten-draft_2024_02_15",
                ),
                Tag::new("Input-Encoding", "JSON-1"),
                Tag::new("Output-Encoding", "JSON-1"),
                Tag::new("Memory-Limit", "1-gb"),
                Tag::new("Compute-Limit", "9000000000000"),
            ],
        });
    }

    /// Registers `url` as where the scheduler with this address runs.
    pub fn add_scheduler(&self, address: &str, url: &str) {
        self.data
            .lock()
            .schedulers
            .insert(address.to_string(), url.to_string());
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.data.lock().received.clone()
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.server.stop(true).await;
    }
}

async fn graphql(data: web::Data<Mutex<Data>>, body: web::Bytes) -> HttpResponse {
    let lookup = serde_json::from_slice::<Value>(&body)
        .map_err(|e| format!("not JSON: {e}"))
        .and_then(|v| classify(&v));
    let answer = match &lookup {
        Ok(lookup) => Ok(answer(&data, lookup).await),
        Err(e) => Err(e.clone()),
    };
    let edges = answer.as_ref().map(Vec::len).unwrap_or(0);
    data.lock().received.push(Received { lookup, edges });
    match answer {
        Ok(txs) => HttpResponse::Ok().json(connection(&txs)),
        Err(e) => HttpResponse::BadRequest().json(json!({
            "errors": [{"message": format!("hb's stand-in gateway does not answer this: {e}")}]
        })),
    }
}

/// The transactions answering `lookup`.
async fn answer(data: &Mutex<Data>, lookup: &Lookup) -> Vec<Transaction> {
    match lookup {
        Lookup::SchedulerLocation { owner } => {
            let url = data.lock().schedulers.get(owner).cloned();
            url.map(|url| scheduler_location(owner, &url))
                .into_iter()
                .collect()
        }
        Lookup::ByIds { ids, filters } => {
            let mut found = Vec::new();
            for id in ids {
                let (known, index) = {
                    let d = data.lock();
                    (d.transactions.get(id).cloned(), d.index.clone())
                };
                let tx = match (known, index) {
                    (Some(tx), _) => Some(tx),
                    (None, Some(node)) => indexed(&node, id).await,
                    (None, None) => None,
                };
                found.extend(tx.filter(|tx| matches(tx, filters)));
            }
            found
        }
    }
}

/// The Scheduler-Location record of `owner` at `url`.
pub fn scheduler_location(owner: &str, url: &str) -> Transaction {
    Transaction {
        id: format!("scheduler-location-of-{owner}"),
        owner: owner.to_string(),
        tags: vec![
            Tag::new("Data-Protocol", "ao"),
            Tag::new("Variant", "ao.TN.1"),
            Tag::new("Type", "Scheduler-Location"),
            Tag::new("Url", url),
            Tag::new("Time-To-Live", LOCATION_TTL_MS),
        ],
    }
}

/// `id` as the node's `GET /processes/{id}` describes it, if it does.
async fn indexed(node: &str, id: &str) -> Option<Transaction> {
    let mut res = awc::Client::new()
        .get(format!("{node}/processes/{id}"))
        .send()
        .await
        .ok()?;
    if !res.status().is_success() {
        return None;
    }
    let v: Value = res.json().limit(1 << 20).await.ok()?;
    from_process(&v)
}

/// A transaction from the legacy API's `/processes/{id}` answer (SPEC §10.4).
pub fn from_process(v: &Value) -> Option<Transaction> {
    let tags = v["tags"]
        .as_array()?
        .iter()
        .map(|t| Some(Tag::new(t["name"].as_str()?, t["value"].as_str()?)))
        .collect::<Option<Vec<_>>>()?;
    Some(Transaction {
        id: v["process_id"].as_str()?.to_string(),
        owner: v["owner"]["address"].as_str()?.to_string(),
        tags,
    })
}

fn matches(tx: &Transaction, filters: &[TagFilter]) -> bool {
    filters.iter().all(|f| {
        tx.tags
            .iter()
            .any(|t| t.name == f.name && f.values.contains(&t.value))
    })
}

/// The GraphQL answer: `{data: {transactions: {pageInfo, edges}}}`.
pub fn connection(txs: &[Transaction]) -> Value {
    let edges: Vec<Value> = txs
        .iter()
        .map(|tx| {
            json!({
                "cursor": tx.id,
                "node": {
                    "id": tx.id,
                    "anchor": "",
                    "signature": "",
                    "recipient": "",
                    "owner": {"address": tx.owner, "key": ""},
                    "tags": tx.tags.iter()
                        .map(|t| json!({"name": t.name, "value": t.value}))
                        .collect::<Vec<_>>(),
                    "block": null,
                    "parent": null,
                }
            })
        })
        .collect();
    json!({"data": {"transactions": {"pageInfo": {"hasNextPage": false}, "edges": edges}}})
}

/// What a GraphQL request body `{query, variables}` asks for: the
/// arguments of its `transactions(…)` field, variables substituted.
pub fn classify(body: &Value) -> Result<Lookup, String> {
    let query = body["query"].as_str().ok_or("no `query` text")?;
    let variables = &body["variables"];
    let tokens = tokenize(query)?;
    let at = tokens
        .iter()
        .position(|t| *t == Token::Name("transactions".into()))
        .ok_or("no `transactions` field")?;
    let args = match tokens.get(at + 1) {
        Some(Token::Punct('(')) => {
            let mut p = Parser {
                tokens: &tokens,
                at: at + 2,
            };
            p.arguments()?
        }
        _ => return Err("`transactions` without arguments".into()),
    };
    let arg = |name: &str| args.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let filters = match arg("tags") {
        Some(v) => tag_filters(v, variables)?,
        None => Vec::new(),
    };
    if let Some(ids) = arg("ids") {
        return Ok(Lookup::ByIds {
            ids: strings(ids, variables)?,
            filters,
        });
    }
    if let Some(owners) = arg("owners") {
        let is_location = filters
            .iter()
            .any(|f| f.name == "Type" && f.values.iter().any(|v| v == "Scheduler-Location"));
        return match strings(owners, variables)?.as_slice() {
            [owner] if is_location => Ok(Lookup::SchedulerLocation {
                owner: owner.clone(),
            }),
            _ => Err("an owners query that is not one Scheduler-Location look-up".into()),
        };
    }
    Err("neither `ids` nor `owners`".into())
}

/// A GraphQL value, as far as these queries use them.
#[derive(Clone, Debug, PartialEq)]
enum Gql {
    Str(String),
    Var(String),
    Name(String),
    List(Vec<Gql>),
    Object(Vec<(String, Gql)>),
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Punct(char),
    Str(String),
    Var(String),
    Name(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() || c == ',' => {}
            '#' => {
                // A comment runs to the end of the line.
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '{' | '}' | '[' | ']' | '(' | ')' | ':' | '!' | '=' | '@' => {
                tokens.push(Token::Punct(c))
            }
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => s.extend(chars.next()),
                        Some(c) => s.push(c),
                        None => return Err("an unterminated string".into()),
                    }
                }
                tokens.push(Token::Str(s));
            }
            '$' => tokens.push(Token::Var(word(&mut chars, String::new()))),
            c if c.is_alphanumeric() || c == '_' || c == '-' => {
                tokens.push(Token::Name(word(&mut chars, c.to_string())))
            }
            c => return Err(format!("an unexpected character {c:?}")),
        }
    }
    Ok(tokens)
}

fn word(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, mut s: String) -> String {
    while let Some(&c) = chars.peek() {
        if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' {
            s.push(c);
            chars.next();
        } else {
            break;
        }
    }
    s
}

struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<&Token> {
        let t = self.tokens.get(self.at);
        self.at += 1;
        t
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    /// `name: value …` up to the closing `)`.
    fn arguments(&mut self) -> Result<Vec<(String, Gql)>, String> {
        self.fields(')')
    }

    fn fields(&mut self, close: char) -> Result<Vec<(String, Gql)>, String> {
        let mut out = Vec::new();
        loop {
            match self.next().cloned() {
                Some(Token::Punct(c)) if c == close => return Ok(out),
                Some(Token::Name(name)) => {
                    if self.next() != Some(&Token::Punct(':')) {
                        return Err(format!("no `:` after argument {name}"));
                    }
                    out.push((name, self.value()?));
                }
                other => return Err(format!("unexpected {other:?} in arguments")),
            }
        }
    }

    fn value(&mut self) -> Result<Gql, String> {
        match self.next().cloned() {
            Some(Token::Str(s)) => Ok(Gql::Str(s)),
            Some(Token::Var(v)) => Ok(Gql::Var(v)),
            Some(Token::Name(n)) => Ok(Gql::Name(n)),
            Some(Token::Punct('[')) => {
                let mut items = Vec::new();
                while self.peek() != Some(&Token::Punct(']')) {
                    if self.peek().is_none() {
                        return Err("an unterminated list".into());
                    }
                    items.push(self.value()?);
                }
                self.at += 1;
                Ok(Gql::List(items))
            }
            Some(Token::Punct('{')) => Ok(Gql::Object(self.fields('}')?)),
            other => Err(format!("unexpected {other:?} as a value")),
        }
    }
}

/// The strings a value names: a string, a list of them, or a variable
/// holding either.
fn strings(v: &Gql, variables: &Value) -> Result<Vec<String>, String> {
    match v {
        Gql::Str(s) => Ok(vec![s.clone()]),
        Gql::List(items) => Ok(items
            .iter()
            .map(|i| strings(i, variables))
            .collect::<Result<Vec<_>, _>>()?
            .concat()),
        Gql::Var(name) => match &variables[name.as_str()] {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("${name} is not a list of strings")),
            _ => Err(format!("${name} is not given")),
        },
        other => Err(format!("{other:?} is not a string")),
    }
}

fn tag_filters(v: &Gql, variables: &Value) -> Result<Vec<TagFilter>, String> {
    let Gql::List(items) = v else {
        return Err("`tags` is not a list".into());
    };
    items
        .iter()
        .map(|item| {
            let Gql::Object(fields) = item else {
                return Err("a tag filter is not an object".into());
            };
            let field = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v);
            let name = match field("name") {
                Some(v) => strings(v, variables)?.concat(),
                None => return Err("a tag filter without `name`".into()),
            };
            let values = match field("values") {
                Some(v) => strings(v, variables)?,
                None => return Err(format!("the tag filter {name} without `values`")),
            };
            Ok(TagFilter { name, values })
        })
        .collect()
}
