//! `template.yaml` (what is deployed) and `infra/resources.json` (what the local setup creates
//! and the tests run against) must describe the same tables and queues.
//!
//! Needs no server: both files are parsed and compared.
//!
//! Beyond the tables and queues, the tests check what `sam validate` and `cfn-lint` cannot
//! judge: every function gets the environment variables of exactly the resources it uses
//! (`used_by` in `resources.json`), its IAM role reaches no other table or queue and grants no
//! wildcard it does not need, the event sources are configured as the code expects (topics,
//! starting position, partial batch responses, filter pattern, on-failure destinations), the
//! API routes are the specification's, and every failure queue has a depth alarm.
//!
//! Naming: a template resource's `TableName` / `QueueName` is either the plain name from
//! `resources.json` or exactly `!Sub "${AWS::StackName}-<name>"` (the form the template uses,
//! so several stacks fit in one account). Any other form fails the test instead of being
//! guessed at, so a renamed resource cannot silently escape the comparison. References between
//! resources (`!Ref`, `!GetAtt X.Arn`) are resolved through logical ids, and both the short
//! (`!Ref`) and the long (`{"Ref": ...}`) intrinsic forms are accepted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Deserialize;
use serde_yaml::Value;

// ---------------------------------------------------------------- infra/resources.json

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Resources {
    tables: Vec<TableSpec>,
    queues: Vec<QueueSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableSpec {
    name: String,
    env_var: Option<String>,
    /// Functions (binary names) whose code uses the table: they, and only they, get `env_var`
    /// and IAM access to it.
    used_by: Vec<String>,
    billing_mode: String,
    key_schema: KeySpec,
    attribute_definitions: BTreeMap<String, String>,
    #[serde(default)]
    global_secondary_indexes: Vec<GsiSpec>,
    stream_view_type: Option<String>,
    ttl_attribute: Option<String>,
    #[serde(default)]
    point_in_time_recovery: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeySpec {
    partition_key: String,
    sort_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GsiSpec {
    name: String,
    partition_key: String,
    sort_key: Option<String>,
    projection: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueSpec {
    name: String,
    env_var: Option<String>,
    /// Functions (binary names) whose code uses the queue (see `TableSpec::used_by`).
    used_by: Vec<String>,
    fifo: bool,
    content_based_deduplication: Option<bool>,
    dead_letter_queue: Option<String>,
    max_receive_count: Option<u32>,
    message_retention_seconds: Option<u32>,
    visibility_timeout_seconds: Option<u32>,
    /// `MaximumMessageSize` (bytes); `None`: the AWS default.
    maximum_message_size: Option<u32>,
}

// ---------------------------------------------------------------- normalized view

/// A table as both files must agree on it.
#[derive(Debug, PartialEq, Eq)]
struct Table {
    billing_mode: String,
    key: (String, Option<String>),
    attributes: BTreeMap<String, String>,
    /// index name -> (partition key, sort key, projection type)
    gsis: BTreeMap<String, (String, Option<String>, String)>,
    stream_view_type: Option<String>,
    ttl_attribute: Option<String>,
    point_in_time_recovery: bool,
}

/// A queue as both files must agree on it. Unset optional attributes are `None` on both sides
/// (AWS defaults apply); `content_based_deduplication` is `Some` exactly for FIFO queues.
#[derive(Debug, PartialEq, Eq)]
struct Queue {
    fifo: bool,
    content_based_deduplication: Option<bool>,
    /// (dead-letter queue name, maxReceiveCount)
    redrive: Option<(String, u32)>,
    message_retention_seconds: Option<u32>,
    visibility_timeout_seconds: Option<u32>,
    maximum_message_size: Option<u32>,
}

impl From<&TableSpec> for Table {
    fn from(t: &TableSpec) -> Self {
        Table {
            billing_mode: t.billing_mode.clone(),
            key: (
                t.key_schema.partition_key.clone(),
                t.key_schema.sort_key.clone(),
            ),
            attributes: t.attribute_definitions.clone(),
            gsis: t
                .global_secondary_indexes
                .iter()
                .map(|g| {
                    (
                        g.name.clone(),
                        (
                            g.partition_key.clone(),
                            g.sort_key.clone(),
                            g.projection.clone(),
                        ),
                    )
                })
                .collect(),
            stream_view_type: t.stream_view_type.clone(),
            ttl_attribute: t.ttl_attribute.clone(),
            point_in_time_recovery: t.point_in_time_recovery,
        }
    }
}

impl From<&QueueSpec> for Queue {
    fn from(q: &QueueSpec) -> Self {
        Queue {
            fifo: q.fifo,
            content_based_deduplication: q
                .fifo
                .then(|| q.content_based_deduplication.unwrap_or(false)),
            redrive: q.dead_letter_queue.clone().map(|dlq| {
                let count = q.max_receive_count.unwrap_or_else(|| {
                    panic!(
                        "resources.json: queue {} has a DLQ but no max_receive_count",
                        q.name
                    )
                });
                (dlq, count)
            }),
            message_retention_seconds: q.message_retention_seconds,
            visibility_timeout_seconds: q.visibility_timeout_seconds,
            maximum_message_size: q.maximum_message_size,
        }
    }
}

// ---------------------------------------------------------------- template helpers

fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn load_resources() -> Resources {
    let path = repo_path("infra/resources.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn load_template() -> Value {
    let path = repo_path("template.yaml");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// An intrinsic function call, short (`!Ref X`) or long (`{Ref: X}`, `{"Fn::GetAtt": ...}`)
/// form: returns the function name without prefix (`Ref`, `GetAtt`, `Sub`, ...) and its argument.
fn intrinsic(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_string(),
            &t.value,
        )),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            if k == "Ref" {
                Some(("Ref".to_string(), arg))
            } else {
                k.strip_prefix("Fn::").map(|f| (f.to_string(), arg))
            }
        }
        _ => None,
    }
}

/// The resource name behind a `TableName` / `QueueName` value (see the module comment).
fn resource_name(v: &Value, what: &str) -> String {
    // Match on the variants: serde_yaml's `as_str` also sees through tags (`!Sub "x"` -> "x").
    match intrinsic(v) {
        None => {
            if let Value::String(s) = v {
                return s.clone();
            }
        }
        Some((f, Value::String(arg))) if f == "Sub" => {
            if let Some(rest) = arg.strip_prefix("${AWS::StackName}-") {
                if !rest.contains("${") {
                    return rest.to_string();
                }
            }
        }
        Some(_) => {}
    }
    panic!("{what}: name must be a plain string or !Sub \"${{AWS::StackName}}-<name>\", got {v:?}");
}

/// Logical id named by `!GetAtt X.Arn` (or `!GetAtt [X, Arn]`, or the long form).
fn get_att_arn_target(v: &Value, what: &str) -> String {
    let (id, attr) = get_att(v, what);
    assert_eq!(
        attr, "Arn",
        "{what}: expected the Arn attribute, got {attr}"
    );
    id
}

/// (logical id, attribute) of `!GetAtt X.Attr` (or `!GetAtt [X, Attr]`, or the long form).
fn get_att(v: &Value, what: &str) -> (String, String) {
    let (f, arg) =
        intrinsic(v).unwrap_or_else(|| panic!("{what}: expected !GetAtt <Queue>.Arn, got {v:?}"));
    assert_eq!(f, "GetAtt", "{what}: expected !GetAtt, got {v:?}");
    let (id, attr) = match arg {
        Value::String(s) => s
            .split_once('.')
            .map(|(a, b)| (a.to_string(), b.to_string())),
        Value::Sequence(s) if s.len() == 2 => Some((
            s[0].as_str().unwrap_or_default().to_string(),
            s[1].as_str().unwrap_or_default().to_string(),
        )),
        _ => None,
    }
    .unwrap_or_else(|| panic!("{what}: bad !GetAtt argument {arg:?}"));
    (id, attr)
}

/// Logical id named by `!Ref X`, if `v` is one.
fn ref_target(v: &Value) -> Option<String> {
    match intrinsic(v)? {
        (f, Value::String(id)) if f == "Ref" => Some(id.clone()),
        _ => None,
    }
}

fn as_bool(v: &Value, what: &str) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) if s == "true" || s == "false" => s == "true",
        _ => panic!("{what}: expected a boolean, got {v:?}"),
    }
}

fn as_u32(v: &Value, what: &str) -> u32 {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or_else(|| panic!("{what}: expected a non-negative integer, got {v:?}"))
}

/// A plain string property (an intrinsic such as `!Ref X` is not accepted where a literal is
/// compared: serde_yaml's `as_str` would see through the tag).
fn str_field<'a>(v: &'a Value, key: &str, what: &str) -> &'a str {
    match v.get(key) {
        Some(Value::String(s)) => s,
        other => panic!("{what}: {key} must be a plain string, got {other:?}"),
    }
}

fn key_schema(v: &Value, what: &str) -> (String, Option<String>) {
    let items = v
        .as_sequence()
        .unwrap_or_else(|| panic!("{what}: KeySchema must be a list"));
    let mut hash = None;
    let mut range = None;
    for item in items {
        let name = str_field(item, "AttributeName", what).to_string();
        match str_field(item, "KeyType", what) {
            "HASH" => assert!(hash.replace(name).is_none(), "{what}: two HASH keys"),
            "RANGE" => assert!(range.replace(name).is_none(), "{what}: two RANGE keys"),
            other => panic!("{what}: unknown KeyType {other}"),
        }
    }
    (hash.unwrap_or_else(|| panic!("{what}: no HASH key")), range)
}

/// Template resources of one type: logical id -> resource.
fn resources_of_type<'a>(template: &'a Value, ty: &str) -> BTreeMap<String, &'a Value> {
    template
        .get("Resources")
        .and_then(Value::as_mapping)
        .expect("template.yaml: Resources")
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
        .map(|(id, r)| (id.as_str().expect("logical id").to_string(), r))
        .collect()
}

fn properties<'a>(r: &'a Value, id: &str) -> &'a Value {
    r.get("Properties")
        .unwrap_or_else(|| panic!("{id}: no Properties"))
}

/// Template tables: name -> (logical id, normalized table).
fn template_tables(template: &Value) -> BTreeMap<String, (String, Table)> {
    let mut out = BTreeMap::new();
    for (id, r) in resources_of_type(template, "AWS::DynamoDB::Table") {
        let p = properties(r, &id);
        let name = resource_name(
            p.get("TableName")
                .unwrap_or_else(|| panic!("{id}: no TableName")),
            &id,
        );
        assert!(
            p.get("LocalSecondaryIndexes").is_none(),
            "{id}: LSIs are not in resources.json"
        );
        let attributes = p
            .get("AttributeDefinitions")
            .and_then(Value::as_sequence)
            .unwrap_or_else(|| panic!("{id}: AttributeDefinitions"))
            .iter()
            .map(|a| {
                (
                    str_field(a, "AttributeName", &id).to_string(),
                    str_field(a, "AttributeType", &id).to_string(),
                )
            })
            .collect::<BTreeMap<_, _>>();
        let gsis = p
            .get("GlobalSecondaryIndexes")
            .and_then(Value::as_sequence)
            .map(|s| s.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|g| {
                let gname = str_field(g, "IndexName", &id).to_string();
                let what = format!("{id}.{gname}");
                let (pk, sk) = key_schema(g.get("KeySchema").expect("GSI KeySchema"), &what);
                let projection = g
                    .get("Projection")
                    .map(|pr| str_field(pr, "ProjectionType", &what).to_string())
                    .unwrap_or_else(|| panic!("{what}: no Projection"));
                (gname, (pk, sk, projection))
            })
            .collect();
        let stream_view_type = p.get("StreamSpecification").map(|s| {
            assert!(
                s.get("StreamEnabled").is_none_or(|e| as_bool(e, &id)),
                "{id}: StreamEnabled false"
            );
            str_field(s, "StreamViewType", &id).to_string()
        });
        let ttl_attribute = p.get("TimeToLiveSpecification").and_then(|t| {
            as_bool(t.get("Enabled").expect("TTL Enabled"), &id)
                .then(|| str_field(t, "AttributeName", &id).to_string())
        });
        let point_in_time_recovery = p
            .get("PointInTimeRecoverySpecification")
            .and_then(|s| s.get("PointInTimeRecoveryEnabled"))
            .is_some_and(|e| as_bool(e, &id));
        let table = Table {
            billing_mode: match p.get("BillingMode") {
                None => "PROVISIONED".to_string(),
                Some(_) => str_field(p, "BillingMode", &id).to_string(),
            },
            key: key_schema(p.get("KeySchema").expect("KeySchema"), &id),
            attributes,
            gsis,
            stream_view_type,
            ttl_attribute,
            point_in_time_recovery,
        };
        assert!(
            out.insert(name.clone(), (id, table)).is_none(),
            "two tables named {name}"
        );
    }
    out
}

/// Template queues: name -> (logical id, normalized queue).
fn template_queues(template: &Value) -> BTreeMap<String, (String, Queue)> {
    let queues = resources_of_type(template, "AWS::SQS::Queue");
    let name_of = |id: &str| -> String {
        let r = queues
            .get(id)
            .unwrap_or_else(|| panic!("no AWS::SQS::Queue with logical id {id}"));
        resource_name(
            properties(r, id)
                .get("QueueName")
                .unwrap_or_else(|| panic!("{id}: no QueueName")),
            id,
        )
    };
    let mut out = BTreeMap::new();
    for (id, r) in &queues {
        let p = properties(r, id);
        let name = name_of(id);
        let fifo = p.get("FifoQueue").is_some_and(|v| as_bool(v, id));
        let cbd = p.get("ContentBasedDeduplication").map(|v| as_bool(v, id));
        assert!(
            fifo || cbd.is_none(),
            "{id}: ContentBasedDeduplication on a standard queue"
        );
        let redrive = p.get("RedrivePolicy").map(|rp| {
            let target = get_att_arn_target(
                rp.get("deadLetterTargetArn")
                    .unwrap_or_else(|| panic!("{id}: RedrivePolicy.deadLetterTargetArn")),
                id,
            );
            let count = as_u32(
                rp.get("maxReceiveCount")
                    .unwrap_or_else(|| panic!("{id}: RedrivePolicy.maxReceiveCount")),
                id,
            );
            (name_of(&target), count)
        });
        let queue = Queue {
            fifo,
            content_based_deduplication: fifo.then(|| cbd.unwrap_or(false)),
            redrive,
            message_retention_seconds: p.get("MessageRetentionPeriod").map(|v| as_u32(v, id)),
            visibility_timeout_seconds: p.get("VisibilityTimeout").map(|v| as_u32(v, id)),
            maximum_message_size: p.get("MaximumMessageSize").map(|v| as_u32(v, id)),
        };
        assert!(
            out.insert(name.clone(), (id.clone(), queue)).is_none(),
            "two queues named {name}"
        );
    }
    out
}

/// Every function's environment: `Globals.Function.Environment.Variables` overlaid with its own.
fn function_environments(template: &Value) -> BTreeMap<String, BTreeMap<String, Value>> {
    let vars = |v: Option<&Value>| -> BTreeMap<String, Value> {
        v.and_then(|e| e.get("Environment"))
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.as_str().expect("variable name").to_string(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let globals = vars(template.get("Globals").and_then(|g| g.get("Function")));
    resources_of_type(template, "AWS::Serverless::Function")
        .into_iter()
        .map(|(id, r)| {
            let mut env = globals.clone();
            env.extend(vars(r.get("Properties")));
            (id, env)
        })
        .collect()
}

/// The binaries of the workspace, one Lambda function each (`resources.json` `used_by` names).
const FUNCTIONS: [&str; 4] = ["api", "ingest", "relay", "timer"];

/// Template functions by the binary they build: binary -> (logical id, resource).
fn functions_by_binary(template: &Value) -> BTreeMap<String, (String, &Value)> {
    resources_of_type(template, "AWS::Serverless::Function")
        .into_iter()
        .map(|(id, r)| {
            let bin = r
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .map(|b| str_field(b, "Binary", &id).to_string())
                .unwrap_or_else(|| panic!("{id}: no Metadata.BuildProperties.Binary"));
            (bin, (id, r))
        })
        .collect()
}

/// A table or queue of resources.json, as the access checks need it.
#[derive(Debug)]
struct SpecResource {
    name: String,
    env_var: Option<String>,
    used_by: BTreeSet<String>,
}

/// Every table and queue of resources.json by its template logical id. Checks the `used_by`
/// lists: known function names, no repeats, and an `env_var` to find the resource by.
fn spec_resources(spec: &Resources, template: &Value) -> BTreeMap<String, SpecResource> {
    let tables = template_tables(template);
    let queues = template_queues(template);
    let mut out = BTreeMap::new();
    let logical_id = |name: &str, deployed: Option<&String>| -> String {
        deployed
            .cloned()
            .unwrap_or_else(|| panic!("{name}: not in template.yaml"))
    };
    let entries = spec
        .tables
        .iter()
        .map(|t| {
            let id = logical_id(&t.name, tables.get(&t.name).map(|(id, _)| id));
            (id, &t.name, &t.env_var, &t.used_by)
        })
        .chain(spec.queues.iter().map(|q| {
            let id = logical_id(&q.name, queues.get(&q.name).map(|(id, _)| id));
            (id, &q.name, &q.env_var, &q.used_by)
        }));
    for (id, name, env_var, used_by) in entries {
        let set: BTreeSet<String> = used_by.iter().cloned().collect();
        assert_eq!(
            set.len(),
            used_by.len(),
            "resources.json: {name}: used_by repeats a function"
        );
        for f in &set {
            assert!(
                FUNCTIONS.contains(&f.as_str()),
                "resources.json: {name}: used_by names {f}, not one of {FUNCTIONS:?}"
            );
        }
        assert!(
            set.is_empty() || env_var.is_some(),
            "resources.json: {name} is used by {set:?} but has no env_var to find it by"
        );
        out.insert(
            id,
            SpecResource {
                name: name.clone(),
                env_var: env_var.clone(),
                used_by: set,
            },
        );
    }
    out
}

/// Logical ids (and parameters) `v` refers to anywhere: `Ref`, `GetAtt` and the `${X}` /
/// `${X.Attr}` variables of `Sub` (minus those its own variable map defines), through every
/// other intrinsic (`If`, `Select`, ...).
fn referenced_ids(v: &Value, out: &mut BTreeSet<String>) {
    if let Some((f, arg)) = intrinsic(v) {
        match (f.as_str(), arg) {
            ("Ref", Value::String(id)) => {
                out.insert(id.clone());
            }
            ("GetAtt", _) => {
                out.insert(get_att(v, "GetAtt").0);
            }
            ("Sub", Value::String(text)) => sub_variables(text, &BTreeSet::new(), out),
            ("Sub", Value::Sequence(parts)) if parts.len() == 2 => {
                let local: BTreeSet<String> = parts[1]
                    .as_mapping()
                    .map(|m| {
                        m.keys()
                            .filter_map(|k| k.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                if let Value::String(text) = &parts[0] {
                    sub_variables(text, &local, out);
                }
                referenced_ids(&parts[1], out);
            }
            _ => referenced_ids(arg, out),
        }
        return;
    }
    match v {
        Value::Mapping(m) => m.values().for_each(|x| referenced_ids(x, out)),
        Value::Sequence(s) => s.iter().for_each(|x| referenced_ids(x, out)),
        _ => {}
    }
}

fn sub_variables(text: &str, local: &BTreeSet<String>, out: &mut BTreeSet<String>) {
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let var = &after[..end];
        rest = &after[end + 1..];
        if var.starts_with('!') {
            continue; // `${!Literal}` is not a variable
        }
        let id = var.split('.').next().unwrap_or(var);
        if !local.contains(id) {
            out.insert(id.to_string());
        }
    }
}

/// Every plain string under `v` (inside intrinsics too).
fn all_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Mapping(m) => m.values().for_each(|x| all_strings(x, out)),
        Value::Sequence(s) => s.iter().for_each(|x| all_strings(x, out)),
        Value::Tagged(t) => all_strings(&t.value, out),
        _ => {}
    }
}

/// Every IAM policy statement (a mapping with `Effect`) under `v`, both branches of `!If`
/// included.
fn statements<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Mapping(m) if v.get("Effect").is_some() => out.push(v),
        Value::Mapping(m) => m.values().for_each(|x| statements(x, out)),
        Value::Sequence(s) => s.iter().for_each(|x| statements(x, out)),
        Value::Tagged(t) => statements(&t.value, out),
        _ => {}
    }
}

/// A string or a list of strings (IAM `Action`, `FunctionResponseTypes`, ...).
fn string_list(v: Option<&Value>, what: &str) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => panic!("{what}: expected strings, got {other:?}"),
            })
            .collect(),
        other => panic!("{what}: expected a string or a list of strings, got {other:?}"),
    }
}

fn as_i64(v: &Value, what: &str) -> i64 {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or_else(|| panic!("{what}: expected an integer, got {v:?}"))
}

/// The values an integer property can take: itself, or for `!Ref <parameter>` the parameter's
/// `Default`, `MinValue` and `MaxValue` (all required, so that the range is bounded).
fn integer_values(template: &Value, v: &Value, what: &str) -> Vec<i64> {
    let Some(param) = ref_target(v) else {
        return vec![as_i64(v, what)];
    };
    let p = template
        .get("Parameters")
        .and_then(|ps| ps.get(&param))
        .unwrap_or_else(|| panic!("{what}: !Ref {param} is not a template parameter"));
    ["Default", "MinValue", "MaxValue"]
        .iter()
        .map(|key| {
            as_i64(
                p.get(*key)
                    .unwrap_or_else(|| panic!("{what}: parameter {param} has no {key}")),
                &format!("{what}: parameter {param}.{key}"),
            )
        })
        .collect()
}

/// The events of one type of a function: (event name, Properties). Panics when the function
/// has events of any other type.
fn events_of<'a>(function: &'a Value, id: &str, ty: &str) -> Vec<(String, &'a Value)> {
    let events = properties(function, id)
        .get("Events")
        .and_then(Value::as_mapping)
        .unwrap_or_else(|| panic!("{id}: no Events"));
    events
        .iter()
        .map(|(name, e)| {
            let name = name.as_str().expect("event name").to_string();
            assert_eq!(
                e.get("Type").and_then(Value::as_str),
                Some(ty),
                "{id}: event {name} must be of type {ty}"
            );
            let p = e
                .get("Properties")
                .unwrap_or_else(|| panic!("{id}.{name}: no Properties"));
            (name, p)
        })
        .collect()
}

/// The queue of an event source's `DestinationConfig.OnFailure`: a standard queue of
/// resources.json that no function writes itself (Lambda's invocation records have a format of
/// their own; FIFO queues are not supported as destinations). Returns its logical id.
fn on_failure_queue(
    event: &Value,
    what: &str,
    resources: &BTreeMap<String, SpecResource>,
    queues: &BTreeMap<String, (String, Queue)>,
) -> String {
    let dest = event
        .get("DestinationConfig")
        .and_then(|d| d.get("OnFailure"))
        .and_then(|d| d.get("Destination"))
        .unwrap_or_else(|| panic!("{what}: no DestinationConfig.OnFailure.Destination"));
    let id = get_att_arn_target(dest, what);
    let spec = resources.get(&id).unwrap_or_else(|| {
        panic!("{what}: on-failure destination {id} is not a queue of resources.json")
    });
    let (_, queue) = &queues[&spec.name];
    assert!(
        !queue.fifo,
        "{what}: on-failure destination {} is a FIFO queue",
        spec.name
    );
    assert!(
        spec.used_by.is_empty(),
        "{what}: on-failure destination {} is also written by {:?}: give Lambda's failure records a queue of their own",
        spec.name,
        spec.used_by
    );
    id
}

// ---------------------------------------------------------------- tests

#[test]
fn tables_match() {
    let spec = load_resources();
    let template = load_template();
    let deployed = template_tables(&template);

    let expected: BTreeMap<String, Table> = spec
        .tables
        .iter()
        .map(|t| (t.name.clone(), t.into()))
        .collect();
    assert_eq!(
        expected.len(),
        spec.tables.len(),
        "resources.json: duplicate table names"
    );
    assert_eq!(
        deployed.keys().collect::<BTreeSet<_>>(),
        expected.keys().collect::<BTreeSet<_>>(),
        "table names differ between template.yaml and resources.json"
    );
    for (name, want) in &expected {
        let (id, got) = &deployed[name];
        assert_eq!(
            got, want,
            "table {name} (template logical id {id}) differs from resources.json"
        );
    }
}

#[test]
fn queues_match() {
    let spec = load_resources();
    let template = load_template();
    let deployed = template_queues(&template);

    let expected: BTreeMap<String, Queue> = spec
        .queues
        .iter()
        .map(|q| (q.name.clone(), q.into()))
        .collect();
    assert_eq!(
        expected.len(),
        spec.queues.len(),
        "resources.json: duplicate queue names"
    );
    assert_eq!(
        deployed.keys().collect::<BTreeSet<_>>(),
        expected.keys().collect::<BTreeSet<_>>(),
        "queue names differ between template.yaml and resources.json"
    );
    for (name, want) in &expected {
        let (id, got) = &deployed[name];
        assert_eq!(
            got, want,
            "queue {name} (template logical id {id}) differs from resources.json"
        );
        assert_eq!(
            name.ends_with(".fifo"),
            want.fifo,
            "queue {name}: FIFO names end with .fifo"
        );
        if let Some((dlq, _)) = &want.redrive {
            assert_eq!(
                expected[dlq].fifo, want.fifo,
                "queue {name}: DLQ {dlq} must be of the same kind"
            );
        }
    }
}

/// The `env_var` of a table or queue in resources.json (what the local environment sets)
/// reaches exactly the functions its `used_by` names, as `!Ref` of that resource (table name /
/// queue URL); the other functions do not get it.
#[test]
fn functions_get_the_resource_environment() {
    let spec = load_resources();
    let template = load_template();
    let resources = spec_resources(&spec, &template);
    let envs = function_environments(&template);
    let functions = functions_by_binary(&template);
    assert!(
        !functions.is_empty(),
        "template.yaml has no AWS::Serverless::Function"
    );
    let mut delivered = 0;
    for (bin, (function, _)) in &functions {
        let env = &envs[function];
        for (id, r) in &resources {
            let Some(var) = &r.env_var else { continue };
            if r.used_by.contains(bin) {
                let value = env.get(var).unwrap_or_else(|| {
                    panic!(
                        "{function}: environment variable {var} not set ({} is used by {bin})",
                        r.name
                    )
                });
                assert_eq!(
                    ref_target(value).as_deref(),
                    Some(id.as_str()),
                    "{function}: {var} must be !Ref {id}, got {value:?}"
                );
                delivered += 1;
            } else {
                assert!(
                    !env.contains_key(var),
                    "{function}: gets {var}, but resources.json does not list {bin} in used_by of {}",
                    r.name
                );
            }
        }
    }
    assert!(delivered > 0, "no function gets any resource variable");
}

/// Least privilege: each function has its own IAM role (not one SAM generates: that one gets
/// the event sources' managed policies, on every resource), which reaches exactly the tables
/// and queues the function uses (`used_by`) plus those its event sources name (the stream, the
/// on-failure destination), and grants no wildcard action and no action on `"*"` beyond the
/// describe calls that support no resource scoping.
#[test]
fn roles_reach_only_what_their_function_uses() {
    const UNSCOPED_ACTIONS: [&str; 4] = [
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeVpcs",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
    ];
    let spec = load_resources();
    let template = load_template();
    let resources = spec_resources(&spec, &template);
    let roles = resources_of_type(&template, "AWS::IAM::Role");
    let mut roles_seen = BTreeSet::new();
    for (bin, (fid, function)) in functions_by_binary(&template) {
        let props = properties(function, &fid);
        assert!(
            props.get("Policies").is_none(),
            "{fid}: SAM Policies make SAM generate the role, with the event sources' managed policies (Resource \"*\"): use an AWS::IAM::Role of its own"
        );
        let role_id = get_att_arn_target(
            props
                .get("Role")
                .unwrap_or_else(|| panic!("{fid}: no Role (!GetAtt <role>.Arn)")),
            &fid,
        );
        assert!(
            roles_seen.insert(role_id.clone()),
            "two functions share the role {role_id}"
        );
        let role = roles
            .get(&role_id)
            .unwrap_or_else(|| panic!("{fid}: {role_id} is not an AWS::IAM::Role of the template"));
        let role_props = properties(role, &role_id);
        assert!(
            role_props.get("ManagedPolicyArns").is_none(),
            "{role_id}: managed policies are not scoped to this stack's resources"
        );
        let policies = role_props
            .get("Policies")
            .unwrap_or_else(|| panic!("{role_id}: no Policies"));

        let mut reached = BTreeSet::new();
        referenced_ids(policies, &mut reached);
        reached.retain(|id| resources.contains_key(id));
        let mut named_by_events = BTreeSet::new();
        if let Some(events) = props.get("Events") {
            referenced_ids(events, &mut named_by_events);
        }
        named_by_events.retain(|id| resources.contains_key(id));
        let needed: BTreeSet<String> = resources
            .iter()
            .filter(|(_, r)| r.used_by.contains(&bin))
            .map(|(id, _)| id.clone())
            .chain(named_by_events)
            .collect();
        let extra: Vec<_> = reached.difference(&needed).collect();
        assert!(
            extra.is_empty(),
            "{role_id} ({bin}) reaches {extra:?}: not used by {bin} (resources.json used_by) nor named by its event sources"
        );
        let missing: Vec<_> = needed.difference(&reached).collect();
        assert!(
            missing.is_empty(),
            "{role_id} ({bin}) grants nothing on {missing:?}, which {bin} uses or its event sources name"
        );

        let mut found = Vec::new();
        statements(policies, &mut found);
        assert!(!found.is_empty(), "{role_id}: no policy statements");
        for st in found {
            assert!(
                st.get("NotAction").is_none() && st.get("NotResource").is_none(),
                "{role_id}: NotAction / NotResource grant more than they name"
            );
            let actions = string_list(st.get("Action"), &role_id);
            for a in &actions {
                assert!(!a.contains('*'), "{role_id}: wildcard action {a}");
            }
            let on_everything = match st.get("Resource") {
                Some(Value::String(r)) => r == "*",
                Some(Value::Sequence(rs)) => rs.iter().any(|r| r.as_str() == Some("*")),
                _ => false,
            };
            if on_everything {
                let scopable: Vec<_> = actions
                    .iter()
                    .filter(|a| !UNSCOPED_ACTIONS.contains(&a.as_str()))
                    .collect();
                assert!(
                    scopable.is_empty(),
                    "{role_id}: {scopable:?} granted on \"*\""
                );
            }
        }
    }
}

/// ingest: one MSK event source on exactly the six consumed topics (the domain's list), read
/// from the start, with partial batch responses (which need provisioned pollers on Kafka), and
/// read access to each topic in the role. Its retry settings: [`ingest_never_skips_a_kafka_record`].
#[test]
fn ingest_consumes_the_six_topics() {
    let template = load_template();
    let functions = functions_by_binary(&template);
    let (fid, function) = &functions["ingest"];
    let events = events_of(function, fid, "MSK");
    assert_eq!(events.len(), 1, "{fid}: one MSK event source");
    let (name, e) = &events[0];
    let what = format!("{fid}.{name}");

    let topics = string_list(e.get("Topics"), &what);
    let expected: BTreeSet<String> = ras_domain::contracts::ConsumedTopic::ALL
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    assert_eq!(topics.len(), expected.len(), "{what}: Topics {topics:?}");
    assert_eq!(
        topics.into_iter().collect::<BTreeSet<_>>(),
        expected,
        "{what}: Topics"
    );

    assert_eq!(
        str_field(e, "StartingPosition", &what),
        "TRIM_HORIZON",
        "{what}"
    );
    assert!(e.get("Stream").is_some(), "{what}: no Stream (cluster ARN)");
    assert!(
        e.get("ConsumerGroupId").is_some(),
        "{what}: no ConsumerGroupId"
    );
    let batch = as_u32(
        e.get("BatchSize")
            .unwrap_or_else(|| panic!("{what}: no BatchSize")),
        &what,
    );
    assert!((1..=10_000).contains(&batch), "{what}: BatchSize {batch}");
    assert!(
        string_list(e.get("FunctionResponseTypes"), &what)
            .contains(&"ReportBatchItemFailures".to_string()),
        "{what}: the handler answers with batchItemFailures"
    );
    let pollers = e.get("ProvisionedPollerConfig").unwrap_or_else(|| {
        panic!("{what}: partial batch responses on Kafka need ProvisionedPollerConfig")
    });
    let min = as_u32(
        pollers
            .get("MinimumPollers")
            .unwrap_or_else(|| panic!("{what}: no MinimumPollers")),
        &what,
    );
    assert!(min >= 1, "{what}: MinimumPollers {min}");

    let role_id = get_att_arn_target(&properties(function, fid)["Role"], fid);
    let roles = resources_of_type(&template, "AWS::IAM::Role");
    let mut strings = Vec::new();
    all_strings(&roles[&role_id]["Properties"]["Policies"], &mut strings);
    for topic in &expected {
        assert!(
            strings
                .iter()
                .any(|s| s.ends_with(&format!(":topic/${{Cluster}}/{topic}"))),
            "{role_id}: no kafka-cluster access to topic {topic}"
        );
    }
}

/// ingest never skips a Kafka record (issue 11, item 1): its MSK event source retries a
/// reported record until it succeeds — `MaximumRetryAttempts` is the literal `-1` (no
/// parameter can lower it), there is **no** on-failure destination (with one, Lambda caps
/// "infinite" retries at 10 and then skips the records: AWS Lambda developer guide,
/// "Configuring error handling controls for Kafka event sources" and "Using a Kafka topic as
/// an on-failure destination") and no maximum record age (it would skip old records, including
/// the retained history `TRIM_HORIZON` reads on the first deployment). Permanent failures are
/// dead-lettered by the function itself; the queue that used to receive Lambda's skip records
/// is gone, and a stuck partition raises the offset-lag alarm.
#[test]
fn ingest_never_skips_a_kafka_record() {
    let spec = load_resources();
    let template = load_template();
    let functions = functions_by_binary(&template);
    let (fid, function) = &functions["ingest"];
    let events = events_of(function, fid, "MSK");
    assert_eq!(events.len(), 1, "{fid}: one MSK event source");
    let (name, e) = &events[0];
    let what = format!("{fid}.{name}");

    let retries = e
        .get("MaximumRetryAttempts")
        .unwrap_or_else(|| panic!("{what}: MaximumRetryAttempts must be stated (-1)"));
    assert!(
        intrinsic(retries).is_none(),
        "{what}: MaximumRetryAttempts must be the literal -1, not {retries:?} (a parameter could cap the retries and skip records)"
    );
    assert_eq!(as_i64(retries, &what), -1, "{what}: MaximumRetryAttempts");
    assert!(
        e.get("DestinationConfig").is_none(),
        "{what}: an on-failure destination caps infinite retries at 10 and skips the records: {:?}",
        e.get("DestinationConfig")
    );
    assert!(
        e.get("MaximumRecordAgeInSeconds").is_none(),
        "{what}: a maximum record age would skip records (also the retained history that TRIM_HORIZON reads on the first deployment)"
    );
    let parameters = template
        .get("Parameters")
        .and_then(Value::as_mapping)
        .expect("Parameters");
    assert!(
        !parameters.contains_key("IngestMaximumRetryAttempts"),
        "template: the IngestMaximumRetryAttempts parameter would let a deployment cap the retries"
    );
    assert!(
        !spec.queues.iter().any(|q| q.name == "ras-ingest-failures"),
        "resources.json: ras-ingest-failures received Lambda's records of skipped Kafka records; nothing is skipped now"
    );
    // The alarm that tells operators a partition is stuck.
    let alarms = resources_of_type(&template, "AWS::CloudWatch::Alarm");
    let lag = alarms
        .get("IngestOffsetLagAlarm")
        .unwrap_or_else(|| panic!("template: no IngestOffsetLagAlarm"));
    assert_eq!(
        properties(lag, "IngestOffsetLagAlarm")
            .get("MetricName")
            .and_then(Value::as_str),
        Some("OffsetLag")
    );
}

/// relay: one DynamoDB stream event source on the outbox table's stream, INSERTs only, with
/// partial batch responses, bisection, valid retries, a record age below the stream's retention,
/// and an on-failure destination.
#[test]
fn relay_reads_inserts_of_the_outbox_stream() {
    let spec = load_resources();
    let template = load_template();
    let resources = spec_resources(&spec, &template);
    let tables = template_tables(&template);
    let queues = template_queues(&template);
    let functions = functions_by_binary(&template);
    let (fid, function) = &functions["relay"];
    let events = events_of(function, fid, "DynamoDB");
    assert_eq!(events.len(), 1, "{fid}: one DynamoDB stream event source");
    let (name, e) = &events[0];
    let what = format!("{fid}.{name}");

    let (table_id, attr) = get_att(
        e.get("Stream")
            .unwrap_or_else(|| panic!("{what}: no Stream")),
        &what,
    );
    assert_eq!(
        attr, "StreamArn",
        "{what}: Stream must be !GetAtt <table>.StreamArn"
    );
    let table = tables
        .values()
        .find(|(id, _)| *id == table_id)
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("{what}: {table_id} is not a table of resources.json"));
    assert!(
        table.stream_view_type.is_some(),
        "{what}: {table_id} has no stream"
    );
    assert_eq!(
        resources[&table_id].name, "ras-outbox",
        "{what}: the relay reads the outbox stream"
    );

    assert_eq!(
        str_field(e, "StartingPosition", &what),
        "TRIM_HORIZON",
        "{what}"
    );
    let filters = e
        .get("FilterCriteria")
        .and_then(|f| f.get("Filters"))
        .and_then(Value::as_sequence)
        .unwrap_or_else(|| panic!("{what}: no FilterCriteria.Filters"));
    assert_eq!(filters.len(), 1, "{what}: one filter");
    let pattern: serde_json::Value = serde_json::from_str(str_field(&filters[0], "Pattern", &what))
        .unwrap_or_else(|err| panic!("{what}: filter pattern is not JSON: {err}"));
    assert_eq!(
        pattern,
        serde_json::json!({"eventName": ["INSERT"]}),
        "{what}: filter pattern"
    );
    assert!(
        string_list(e.get("FunctionResponseTypes"), &what)
            .contains(&"ReportBatchItemFailures".to_string()),
        "{what}: the handler answers with batchItemFailures"
    );
    assert!(
        as_bool(
            e.get("BisectBatchOnFunctionError")
                .unwrap_or_else(|| panic!("{what}: no BisectBatchOnFunctionError")),
            &what
        ),
        "{what}: BisectBatchOnFunctionError"
    );
    let batch = as_u32(
        e.get("BatchSize")
            .unwrap_or_else(|| panic!("{what}: no BatchSize")),
        &what,
    );
    assert!((1..=10_000).contains(&batch), "{what}: BatchSize {batch}");
    let retries = integer_values(
        &template,
        e.get("MaximumRetryAttempts")
            .unwrap_or_else(|| panic!("{what}: no MaximumRetryAttempts")),
        &what,
    );
    for n in retries {
        assert!(
            (-1..=10_000).contains(&n),
            "{what}: MaximumRetryAttempts {n} (-1..=10000)"
        );
    }
    // The stream keeps records 24 hours: a record that still fails must reach the on-failure
    // destination before it expires, which needs a maximum age below that.
    let age = as_i64(
        e.get("MaximumRecordAgeInSeconds")
            .unwrap_or_else(|| panic!("{what}: no MaximumRecordAgeInSeconds")),
        &what,
    );
    assert!(
        (60..86_400).contains(&age),
        "{what}: MaximumRecordAgeInSeconds {age} (60..86400, below the stream's retention)"
    );
    on_failure_queue(e, &what, &resources, &queues);
}

/// api: the routes of SPEC §5 on one HTTP API, nothing else.
#[test]
fn api_serves_the_specified_routes() {
    let template = load_template();
    let functions = functions_by_binary(&template);
    let (fid, function) = &functions["api"];
    let apis = resources_of_type(&template, "AWS::Serverless::HttpApi");
    let mut api_ids = BTreeSet::new();
    let mut routes = BTreeSet::new();
    for (name, e) in events_of(function, fid, "HttpApi") {
        let what = format!("{fid}.{name}");
        let api = ref_target(e.get("ApiId").unwrap_or_else(|| panic!("{what}: no ApiId")))
            .unwrap_or_else(|| panic!("{what}: ApiId must be !Ref <HttpApi>"));
        assert!(
            apis.contains_key(&api),
            "{what}: {api} is not an AWS::Serverless::HttpApi"
        );
        api_ids.insert(api);
        let route = (
            str_field(e, "Method", &what).to_uppercase(),
            str_field(e, "Path", &what).to_string(),
        );
        assert!(
            routes.insert(route.clone()),
            "{what}: route {route:?} twice"
        );
    }
    assert_eq!(
        api_ids.len(),
        1,
        "{fid}: routes on one HTTP API, got {api_ids:?}"
    );
    let expected: BTreeSet<(String, String)> = [
        "/internal/v1/batches/{batch_id}/status",
        "/internal/v1/batches/user/{user_id}",
        "/internal/v1/assessments/{cj_assessment_job_id}",
        "/internal/v1/batches/{batch_id}/assessments",
        "/healthz",
        "/internal/v1/openapi.json",
    ]
    .into_iter()
    .map(|p| ("GET".to_string(), p.to_string()))
    .collect();
    assert_eq!(routes, expected, "{fid}: routes");
}

/// Issue 11: the relay checks messages against `MAX_MESSAGE_BYTES` before sending; the FIFO
/// queues it publishes to (and their dead-letter queues, which receive the same messages) must
/// say so explicitly, in both files: an unset `MaximumMessageSize` may mean 256 KiB, and a
/// body between that and 1 MiB would then be refused by SQS.
#[test]
fn relay_queues_accept_the_largest_message_the_relay_sends() {
    let spec = load_resources();
    let template = load_template();
    let queues = template_queues(&template);
    let max = u32::try_from(ras_aws::sqs_publisher::MAX_MESSAGE_BYTES).unwrap();
    let published: Vec<&QueueSpec> = spec
        .queues
        .iter()
        .filter(|q| q.fifo && q.used_by.iter().any(|f| f == "relay"))
        .collect();
    assert_eq!(published.len(), 2, "the events and notifications queues");
    for q in published {
        let mut names = vec![q.name.clone()];
        names.extend(q.dead_letter_queue.clone());
        for name in names {
            let spec_q = spec.queues.iter().find(|s| s.name == name).unwrap();
            assert_eq!(
                spec_q.maximum_message_size,
                Some(max),
                "resources.json: {name}"
            );
            let (id, t) = &queues[&name];
            assert_eq!(t.maximum_message_size, Some(max), "template.yaml: {id}");
        }
    }
    // The relay parks what SQS refuses in a standard queue of its own.
    let parked = spec
        .queues
        .iter()
        .find(|q| q.env_var.as_deref() == Some(ras_aws::parking::PARKED_QUEUE_URL_ENV))
        .expect("a parking queue in resources.json");
    assert!(!parked.fifo && parked.used_by == ["relay"], "{parked:?}");
}

/// Every queue that collects failures (one without a dead-letter queue of its own: the DLQs,
/// the ingest dead letters, the on-failure destinations) has an alarm on its depth; ingest and
/// relay have an alarm on their errors.
#[test]
fn failure_queues_and_functions_have_alarms() {
    let spec = load_resources();
    let template = load_template();
    let queues = template_queues(&template);
    let alarms = resources_of_type(&template, "AWS::CloudWatch::Alarm");
    let dimension = |p: &Value, key: &str| -> Option<Value> {
        p.get("Dimensions")?
            .as_sequence()?
            .iter()
            .find(|d| d.get("Name").and_then(Value::as_str) == Some(key))
            .and_then(|d| d.get("Value").cloned())
    };
    let mut depth_alarmed = BTreeSet::new();
    let mut error_alarmed = BTreeSet::new();
    for (id, alarm) in &alarms {
        let p = properties(alarm, id);
        let metric = (
            p.get("Namespace")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            p.get("MetricName")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        // Fires on the first message / error.
        let any_message = matches!(
            (
                p.get("ComparisonOperator").and_then(Value::as_str),
                p.get("Threshold")
                    .filter(|t| intrinsic(t).is_none())
                    .map(|t| as_i64(t, id)),
            ),
            (Some("GreaterThanThreshold"), Some(0))
                | (Some("GreaterThanOrEqualToThreshold"), Some(1))
        );
        match metric {
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible") if any_message => {
                if let Some(v) = dimension(p, "QueueName") {
                    let (queue, attr) = get_att(&v, id);
                    assert_eq!(attr, "QueueName", "{id}: QueueName dimension");
                    depth_alarmed.insert(queue);
                }
            }
            ("AWS/Lambda", "Errors") if any_message => {
                if let Some(f) = dimension(p, "FunctionName").as_ref().and_then(ref_target) {
                    error_alarmed.insert(f);
                }
            }
            _ => {}
        }
    }
    for q in spec.queues.iter().filter(|q| q.dead_letter_queue.is_none()) {
        let (id, _) = &queues[&q.name];
        assert!(
            depth_alarmed.contains(id),
            "queue {} ({id}) collects failures but has no ApproximateNumberOfMessagesVisible > 0 alarm",
            q.name
        );
    }
    let functions = functions_by_binary(&template);
    for bin in ["ingest", "relay", "timer"] {
        let (fid, _) = &functions[bin];
        assert!(error_alarmed.contains(fid), "{fid}: no Errors > 0 alarm");
    }
}

/// (namespace, metric name, dimensions as (name, value text)).
type WatchedMetric = (String, String, Vec<(String, String)>);

/// The metrics an alarm watches: (namespace, metric name, dimensions), from its own
/// `Namespace`/`MetricName`/`Dimensions` or from each `MetricStat` of a metric-math alarm. For
/// a math alarm, also checks that exactly one query returns data and that its expression uses
/// every metric query.
fn alarm_metrics(p: &Value, id: &str) -> Vec<(String, String, BTreeMap<String, Value>)> {
    let dims = |m: &Value| -> BTreeMap<String, Value> {
        m.get("Dimensions")
            .and_then(Value::as_sequence)
            .map(|ds| {
                ds.iter()
                    .map(|d| {
                        (
                            str_field(d, "Name", id).to_string(),
                            d.get("Value")
                                .cloned()
                                .unwrap_or_else(|| panic!("{id}: dimension without Value")),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    if let Some(queries) = p.get("Metrics").and_then(Value::as_sequence) {
        let returned: Vec<&Value> = queries
            .iter()
            .filter(|q| q.get("ReturnData").is_none_or(|r| as_bool(r, id)))
            .collect();
        assert_eq!(returned.len(), 1, "{id}: exactly one query returns data");
        let expression = str_field(returned[0], "Expression", id);
        let mut out = Vec::new();
        for q in queries {
            let Some(stat) = q.get("MetricStat") else {
                continue;
            };
            let qid = str_field(q, "Id", id);
            assert!(
                expression.contains(qid),
                "{id}: query {qid} is not used by `{expression}`"
            );
            let m = stat
                .get("Metric")
                .unwrap_or_else(|| panic!("{id}.{qid}: no Metric"));
            out.push((
                str_field(m, "Namespace", id).to_string(),
                str_field(m, "MetricName", id).to_string(),
                dims(m),
            ));
        }
        out
    } else {
        vec![(
            str_field(p, "Namespace", id).to_string(),
            str_field(p, "MetricName", id).to_string(),
            dims(p),
        )]
    }
}

/// Every alarm notifies someone (issue 11, item 5): `AlarmTopicArn` when it is given, else the
/// SNS topic the stack creates exactly in that case; alarm and OK transitions alike. The
/// topic's ARN is an output.
#[test]
fn every_alarm_notifies_a_topic() {
    let template = load_template();
    let conditions = template
        .get("Conditions")
        .expect("template.yaml: Conditions");
    let condition = |name: &str| -> Value {
        conditions
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("no condition {name}"))
    };
    let arn_is_empty: Value =
        serde_yaml::from_str("!Equals [!Ref AlarmTopicArn, \"\"]").expect("yaml");
    let arn_is_given: Value =
        serde_yaml::from_str("!Not [!Equals [!Ref AlarmTopicArn, \"\"]]").expect("yaml");
    assert_eq!(
        template
            .get("Parameters")
            .and_then(|p| p.get("AlarmTopicArn"))
            .and_then(|p| p.get("Default"))
            .and_then(Value::as_str),
        Some(""),
        "AlarmTopicArn is optional"
    );

    let topics = resources_of_type(&template, "AWS::SNS::Topic");
    assert_eq!(topics.len(), 1, "one SNS topic: {:?}", topics.keys());
    let (topic_id, topic) = topics.iter().next().expect("topic");
    let topic_condition = topic
        .get("Condition")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{topic_id}: no Condition"));
    assert_eq!(
        condition(topic_condition),
        arn_is_empty,
        "{topic_id} is created exactly when AlarmTopicArn is empty"
    );

    // [!If [<AlarmTopicArn given>, !Ref AlarmTopicArn, !Ref <the topic>]]
    let notifies = |v: Option<&Value>, what: &str| {
        let items = v
            .and_then(Value::as_sequence)
            .unwrap_or_else(|| panic!("{what}: must be a list, got {v:?}"));
        assert_eq!(items.len(), 1, "{what}: one target");
        let (f, arg) =
            intrinsic(&items[0]).unwrap_or_else(|| panic!("{what}: expected !If, got {items:?}"));
        assert_eq!(f, "If", "{what}");
        let arg = arg
            .as_sequence()
            .filter(|a| a.len() == 3)
            .unwrap_or_else(|| panic!("{what}: !If needs 3 arguments"));
        let c = arg[0]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: condition name"));
        assert_eq!(condition(c), arn_is_given, "{what}: condition {c}");
        assert_eq!(
            ref_target(&arg[1]).as_deref(),
            Some("AlarmTopicArn"),
            "{what}"
        );
        assert_eq!(
            ref_target(&arg[2]).as_deref(),
            Some(topic_id.as_str()),
            "{what}"
        );
    };
    let alarms = resources_of_type(&template, "AWS::CloudWatch::Alarm");
    assert!(!alarms.is_empty());
    for (id, alarm) in &alarms {
        let p = properties(alarm, id);
        notifies(p.get("AlarmActions"), &format!("{id}.AlarmActions"));
        notifies(p.get("OKActions"), &format!("{id}.OKActions"));
    }
    let output = template
        .get("Outputs")
        .and_then(|o| o.get("AlarmTopicArn"))
        .expect("output AlarmTopicArn");
    notifies(
        Some(&Value::Sequence(vec![output
            .get("Value")
            .cloned()
            .expect("AlarmTopicArn output value")])),
        "output AlarmTopicArn",
    );
}

/// The alarms issue 11 (item 5) asks for, on the right metrics and dimensions: the relay's
/// iterator age; ingest's `RecordsFailed` on every consumed topic; the relay's failed sends and
/// poison records; errors and throttles of ingest, relay and api; read and write throttle
/// events of every table and of every index's writes; the HTTP API's 5xx. (Depths of the
/// failure queues: `failure_queues_and_functions_have_alarms`.)
#[test]
fn operational_alarms_watch_the_right_metrics() {
    let spec = load_resources();
    let template = load_template();
    let functions = functions_by_binary(&template);
    let tables = template_tables(&template);
    let mut watched: BTreeSet<WatchedMetric> = BTreeSet::new();
    for (id, alarm) in resources_of_type(&template, "AWS::CloudWatch::Alarm") {
        for (ns, metric, dims) in alarm_metrics(properties(alarm, &id), &id) {
            // Dimension values as text: `!Ref X` -> "ref:X", `!GetAtt X.A` -> "getatt:X.A",
            // literals as they are.
            let dims = dims
                .into_iter()
                .map(|(k, v)| {
                    let v = match (&v, ref_target(&v), intrinsic(&v)) {
                        (_, Some(target), _) => format!("ref:{target}"),
                        (_, None, Some((f, _))) if f == "GetAtt" => {
                            let (target, attr) = get_att(&v, &id);
                            format!("getatt:{target}.{attr}")
                        }
                        (Value::String(s), None, None) => s.clone(),
                        (other, _, _) => panic!("{id}: dimension {k} = {other:?}"),
                    };
                    (k, v)
                })
                .collect();
            watched.insert((ns, metric, dims));
        }
    }
    let mut missing = Vec::new();
    let mut want = |ns: &str, metric: &str, dims: &[(&str, &str)]| {
        let key = (
            ns.to_string(),
            metric.to_string(),
            dims.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        );
        if !watched.contains(&key) {
            missing.push(key);
        }
    };
    let function_ref = |bin: &str| format!("ref:{}", functions[bin].0);
    want(
        "AWS/Lambda",
        "IteratorAge",
        &[("FunctionName", &function_ref("relay"))],
    );
    for topic in ras_domain::contracts::ConsumedTopic::ALL {
        want(
            "HuleEdu/ResultAggregator",
            "RecordsFailed",
            &[("Function", "ingest"), ("Topic", topic.name())],
        );
    }
    for metric in ["MessagesFailed", "PoisonRecords"] {
        want("HuleEdu/ResultAggregator", metric, &[("Function", "relay")]);
    }
    for bin in ["ingest", "relay", "api"] {
        for metric in ["Errors", "Throttles"] {
            want(
                "AWS/Lambda",
                metric,
                &[("FunctionName", &function_ref(bin))],
            );
        }
    }
    for t in &spec.tables {
        let table = format!("ref:{}", tables[&t.name].0);
        for metric in ["ReadThrottleEvents", "WriteThrottleEvents"] {
            want("AWS/DynamoDB", metric, &[("TableName", &table)]);
        }
        for gsi in &t.global_secondary_indexes {
            want(
                "AWS/DynamoDB",
                "WriteThrottleEvents",
                &[
                    ("GlobalSecondaryIndexName", &gsi.name),
                    ("TableName", &table),
                ],
            );
        }
    }
    let api = resources_of_type(&template, "AWS::Serverless::HttpApi");
    assert_eq!(api.len(), 1);
    let api_id = format!("ref:{}", api.keys().next().expect("api"));
    want(
        "AWS/ApiGateway",
        "5xx",
        &[("ApiId", &api_id), ("Stage", "$default")],
    );
    assert!(missing.is_empty(), "alarms missing for {missing:#?}");
}

/// docs/operations.md has a runbook line for every alarm of the template (its logical id in
/// backticks), and names no alarm the template does not have.
#[test]
fn every_alarm_has_a_runbook_line() {
    let template = load_template();
    let path = repo_path("docs/operations.md");
    let runbook =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let alarms = resources_of_type(&template, "AWS::CloudWatch::Alarm");
    let undocumented: Vec<&String> = alarms
        .keys()
        .filter(|id| {
            !runbook
                .lines()
                .any(|l| l.starts_with('|') && l.contains(&format!("`{id}`")))
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "alarms without a runbook line in docs/operations.md: {undocumented:?}"
    );
    let named: BTreeSet<&str> = runbook
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| w.ends_with("Alarm") && w.chars().all(|c| c.is_ascii_alphanumeric()))
        .collect();
    for name in named {
        assert!(
            alarms.contains_key(name),
            "docs/operations.md names `{name}`, which template.yaml does not define"
        );
    }
}

/// One function per binary crate under functions/, built by cargo-lambda for arm64.
#[test]
fn functions_build_the_workspace_binaries() {
    let template = load_template();
    let globals = template.get("Globals").and_then(|g| g.get("Function"));
    let mut binaries = BTreeSet::new();
    for (id, r) in resources_of_type(&template, "AWS::Serverless::Function") {
        let meta = r
            .get("Metadata")
            .unwrap_or_else(|| panic!("{id}: no Metadata"));
        assert_eq!(
            str_field(meta, "BuildMethod", &id),
            "rust-cargolambda",
            "{id}"
        );
        let bin = meta
            .get("BuildProperties")
            .map(|b| str_field(b, "Binary", &id).to_string())
            .unwrap_or_else(|| panic!("{id}: no BuildProperties.Binary"));
        assert!(
            repo_path(&format!("functions/{bin}/Cargo.toml")).is_file(),
            "{id}: no crate functions/{bin}"
        );
        let prop = |key: &str| {
            r.get("Properties")
                .and_then(|p| p.get(key))
                .or_else(|| globals.and_then(|g| g.get(key)))
                .cloned()
                .unwrap_or_else(|| panic!("{id}: {key} not set"))
        };
        assert_eq!(prop("Runtime").as_str(), Some("provided.al2023"), "{id}");
        assert_eq!(prop("Handler").as_str(), Some("bootstrap"), "{id}");
        assert_eq!(
            prop("Architectures"),
            Value::Sequence(vec!["arm64".into()]),
            "{id}"
        );
        assert!(binaries.insert(bin.clone()), "two functions build {bin}");
    }
    let expected: BTreeSet<String> = FUNCTIONS.map(String::from).into();
    assert_eq!(binaries, expected);
}

#[test]
fn intrinsics_parse_in_both_forms() {
    let short: Value = serde_yaml::from_str(
        "a: !Sub \"${AWS::StackName}-ras-state\"\nb: !GetAtt Dlq.Arn\nc: !Ref StateTable\nd: ras-x",
    )
    .unwrap();
    let long: Value = serde_yaml::from_str(
        "a: {\"Fn::Sub\": \"${AWS::StackName}-ras-state\"}\nb: {\"Fn::GetAtt\": [Dlq, Arn]}\nc: {Ref: StateTable}",
    )
    .unwrap();
    for v in [&short, &long] {
        assert_eq!(resource_name(&v["a"], "a"), "ras-state");
        assert_eq!(get_att_arn_target(&v["b"], "b"), "Dlq");
        assert_eq!(ref_target(&v["c"]).as_deref(), Some("StateTable"));
    }
    assert_eq!(resource_name(&short["d"], "d"), "ras-x");
}

#[test]
#[should_panic(expected = "name must be")]
fn other_name_forms_are_rejected() {
    let v: Value = serde_yaml::from_str("!Sub \"${Env}-ras-state\"").unwrap();
    resource_name(&v, "x");
}
