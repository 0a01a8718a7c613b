//! `template.yaml` against what only the Rust code and the docs know. The template is the one
//! definition of the tables and queues (the local setup and `ras_local::resources` create them
//! from it); its own rules — IAM scoping, the event sources' retry and failure settings, names,
//! failure alarms, alarm notifications — are cfn-lint rules (`infra/lint/RasTemplateRules.py`,
//! run by `scripts/lint-template.sh`). What is left here needs the code: the functions read the
//! variables the template sets, ingest consumes the domain's topics, the relay reads the outbox
//! table's stream and its queues take its largest message, the API routes, the workspace's
//! binaries, the alarms on the domain's topics and the tables' indexes, the runbook, the state
//! table index grants (the index names the code queries).
//!
//! Needs no server: the template is parsed (`ras_local::template`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use ras_local::template::{
    get_att, intrinsic, named_resources, ref_target, resource_variables, resources_of_type,
    FUNCTION, QUEUE, TABLE,
};
use serde_yaml::Value;

fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn load_template() -> Value {
    ras_local::template::template().unwrap_or_else(|e| panic!("{e}"))
}

fn properties<'a>(r: &'a Value, id: &str) -> &'a Value {
    r.get("Properties")
        .unwrap_or_else(|| panic!("{id}: no Properties"))
}

/// A plain string property (an intrinsic such as `!Ref X` is not accepted where a literal is
/// compared: serde_yaml's `as_str` would see through the tag).
fn str_field<'a>(v: &'a Value, key: &str, what: &str) -> &'a str {
    match v.get(key) {
        Some(Value::String(s)) => s,
        other => panic!("{what}: {key} must be a plain string, got {other:?}"),
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

/// A string or a list of strings (`Topics`, ...).
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

/// The binaries of the workspace, one Lambda function each.
const FUNCTIONS: [&str; 4] = ["api", "ingest", "relay", "timer"];

/// Template functions by the binary they build: binary -> (logical id, resource).
fn functions_by_binary(template: &Value) -> BTreeMap<String, (String, &Value)> {
    resources_of_type(template, FUNCTION)
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

/// The one event of a type of a function: (event name, Properties). Panics when the function
/// has events of any other type, or not exactly one.
fn only_event<'a>(function: &'a Value, id: &str, ty: &str) -> (String, &'a Value) {
    let mut events = events_of(function, id, ty);
    assert_eq!(events.len(), 1, "{id}: one {ty} event source");
    events.remove(0)
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

/// Logical id of the table or queue a function gets as `var` (`!Ref`), if any.
fn variable_target(function: &Value, id: &str, var: &str) -> Option<String> {
    properties(function, id)
        .get("Environment")
        .and_then(|e| e.get("Variables"))
        .and_then(|v| v.get(var))
        .and_then(ref_target)
}

// ---------------------------------------------------------------- tests

/// The variables each function's code reads to find its tables and queues are the ones the
/// template gives it (as `!Ref` of a table or queue); the local environment exports exactly
/// the template's variables, so a renamed one would otherwise pass locally and fail deployed.
#[test]
fn functions_get_the_variables_their_code_reads() {
    use ras_aws::config::{OUTBOX_TABLE_ENV, STATE_TABLE_ENV};
    use ras_aws::parking::PARKED_QUEUE_URL_ENV;
    use ras_aws::sqs_publisher::{EVENTS_QUEUE_URL_ENV, NOTIFICATIONS_QUEUE_URL_ENV};
    let template = load_template();
    let functions = functions_by_binary(&template);
    let tables = named_resources(&template, TABLE).unwrap_or_else(|e| panic!("{e}"));
    let queues = named_resources(&template, QUEUE).unwrap_or_else(|e| panic!("{e}"));
    let table_id = |name: &str| tables[name].id.clone();
    let queue_ids: BTreeSet<String> = queues.values().map(|q| q.id.clone()).collect();
    let expected: [(&str, &[&str]); 4] = [
        (
            "ingest",
            &[
                STATE_TABLE_ENV,
                OUTBOX_TABLE_ENV,
                ingest::config::DLQ_URL_ENV,
            ],
        ),
        ("timer", &[STATE_TABLE_ENV, OUTBOX_TABLE_ENV]),
        ("api", &[STATE_TABLE_ENV]),
        (
            "relay",
            &[
                EVENTS_QUEUE_URL_ENV,
                NOTIFICATIONS_QUEUE_URL_ENV,
                PARKED_QUEUE_URL_ENV,
            ],
        ),
    ];
    let variables = resource_variables(&template).unwrap_or_else(|e| panic!("{e}"));
    let mut read = BTreeSet::new();
    for (bin, vars) in expected {
        let (fid, function) = &functions[bin];
        for var in vars {
            let target = variable_target(function, fid, var)
                .unwrap_or_else(|| panic!("{fid}: {var} must be !Ref of a table or queue"));
            match *var {
                v if v == STATE_TABLE_ENV => assert_eq!(target, table_id("ras-state"), "{fid}"),
                v if v == OUTBOX_TABLE_ENV => assert_eq!(target, table_id("ras-outbox"), "{fid}"),
                _ => assert!(queue_ids.contains(&target), "{fid}: {var} -> {target}"),
            }
            read.insert(var.to_string());
        }
    }
    let set: BTreeSet<String> = variables.keys().cloned().collect();
    assert_eq!(set, read, "variables carrying a table or queue");
}

/// ingest: its MSK event source reads exactly the six consumed topics (the domain's list), and
/// its role may read each. (Retries, starting position, pollers: cfn-lint rule E9002.)
#[test]
fn ingest_consumes_the_six_topics() {
    let template = load_template();
    let functions = functions_by_binary(&template);
    let (fid, function) = &functions["ingest"];
    let (name, e) = only_event(function, fid, "MSK");
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

    let (role_id, _) = get_att(&properties(function, fid)["Role"])
        .unwrap_or_else(|| panic!("{fid}: Role must be !GetAtt <role>.Arn"));
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

/// relay: the routes are template parameters whose values the code accepts, the default
/// routes parse, the Kafka variables are the ones the code reads, and the role may write each
/// published topic (the topics of the code's `PublishedTopic`). (Scope, one condition for the
/// policy, VPC and variables: cfn-lint rule E9007.)
#[test]
fn relay_routes_and_kafka_variables_match_the_code() {
    use ras_aws::kafka_publisher::{BOOTSTRAP_ENV, SECURITY_ENV};
    use ras_aws::routing::{Transport, EVENTS_PUBLISH_TO_ENV, NOTIFICATIONS_PUBLISH_TO_ENV};
    let template = load_template();
    let functions = functions_by_binary(&template);
    let (fid, function) = &functions["relay"];
    let variables = &properties(function, fid)["Environment"]["Variables"];
    for var in [EVENTS_PUBLISH_TO_ENV, NOTIFICATIONS_PUBLISH_TO_ENV] {
        let param = ref_target(&variables[var])
            .unwrap_or_else(|| panic!("{fid}: {var} must be !Ref of a parameter"));
        let p = &template["Parameters"][param.as_str()];
        let allowed = string_list(p.get("AllowedValues"), &param);
        assert_eq!(allowed.len(), Transport::VALUES.len(), "{param}");
        for value in &allowed {
            assert!(Transport::parse(value).is_some(), "{param}: {value}");
        }
        let default = str_field(p, "Default", &param);
        assert_eq!(
            Transport::parse(default),
            Some(Transport::Kafka),
            "{param}: the documented default (docs/kafka.md) is kafka"
        );
    }
    // The Kafka variables are given only under a condition (an SQS-only relay needs none).
    let conditional = |var: &str| -> &Value {
        match intrinsic(&variables[var]) {
            Some((name, args)) if name == "If" => &args[1],
            _ => panic!("{fid}: {var} must be !If [<condition>, <value>, !Ref AWS::NoValue]"),
        }
    };
    assert_eq!(
        ref_target(conditional(BOOTSTRAP_ENV)).as_deref(),
        Some("KafkaBootstrapBrokers"),
        "{fid}: {BOOTSTRAP_ENV}"
    );
    let security = conditional(SECURITY_ENV);
    assert_eq!(
        security.as_str(),
        Some("iam"),
        "{fid}: MSK with IAM access control"
    );
    let (role_id, _) = get_att(&properties(function, fid)["Role"])
        .unwrap_or_else(|| panic!("{fid}: Role must be !GetAtt <role>.Arn"));
    let roles = resources_of_type(&template, "AWS::IAM::Role");
    let mut strings = Vec::new();
    all_strings(&roles[&role_id]["Properties"]["Policies"], &mut strings);
    for topic in ras_domain::contracts::PublishedTopic::ALL {
        assert!(
            strings
                .iter()
                .any(|s| s.ends_with(&format!(":topic/${{Cluster}}/{}", topic.name()))),
            "{role_id}: no kafka-cluster access to topic {}",
            topic.name()
        );
    }
}

/// relay: its one DynamoDB stream event source reads the outbox table's stream (the table the
/// ingest writes its outbox items to). (Filter, retries, failure queue: cfn-lint rule E9003.)
#[test]
fn relay_reads_the_outbox_stream() {
    let template = load_template();
    let functions = functions_by_binary(&template);
    let tables = named_resources(&template, TABLE).unwrap_or_else(|e| panic!("{e}"));
    let (fid, function) = &functions["relay"];
    let (name, e) = only_event(function, fid, "DynamoDB");
    let stream = e.get("Stream").and_then(get_att);
    assert_eq!(
        stream,
        Some((
            tables[ras_aws::config::DEFAULT_OUTBOX_TABLE].id.clone(),
            "StreamArn".to_string()
        )),
        "{fid}.{name}: Stream must be the outbox table's StreamArn"
    );
}

/// Issue 11: the relay checks messages against `MAX_MESSAGE_BYTES` before sending; the FIFO
/// queues it publishes to (and their dead-letter queues, which receive the same messages) must
/// say so explicitly: an unset `MaximumMessageSize` may mean 256 KiB, and a body between that
/// and 1 MiB would then be refused by SQS. The queue it parks refused messages in is a
/// standard one.
#[test]
fn relay_queues_accept_the_largest_message_the_relay_sends() {
    use ras_aws::sqs_publisher::{EVENTS_QUEUE_URL_ENV, NOTIFICATIONS_QUEUE_URL_ENV};
    let template = load_template();
    let functions = functions_by_binary(&template);
    let queues = resources_of_type(&template, QUEUE);
    let max = u32::try_from(ras_aws::sqs_publisher::MAX_MESSAGE_BYTES).unwrap();
    let (fid, relay) = &functions["relay"];
    let queue = |var: &str| {
        let id = variable_target(relay, fid, var).unwrap_or_else(|| panic!("{fid}: no {var}"));
        let q = properties(queues[&id], &id);
        (id, q)
    };
    for var in [EVENTS_QUEUE_URL_ENV, NOTIFICATIONS_QUEUE_URL_ENV] {
        let (id, q) = queue(var);
        assert!(
            q.get("FifoQueue").is_some_and(|f| as_bool(f, &id)),
            "{id}: FIFO"
        );
        let (dlq, _) = q
            .get("RedrivePolicy")
            .and_then(|r| r.get("deadLetterTargetArn"))
            .and_then(get_att)
            .unwrap_or_else(|| panic!("{id}: no dead-letter queue"));
        for id in [id, dlq] {
            let size = properties(queues[&id], &id)
                .get("MaximumMessageSize")
                .map(|v| as_u32(v, &id));
            assert_eq!(size, Some(max), "{id}: MaximumMessageSize");
        }
    }
    let (parked, q) = queue(ras_aws::parking::PARKED_QUEUE_URL_ENV);
    assert!(
        !q.get("FifoQueue").is_some_and(|f| as_bool(f, &parked)),
        "{parked}: a standard queue"
    );
}

/// api: the routes of SPEC §5 (those its OpenAPI document lists) on one HTTP API, nothing else.
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
    // The routes the API documents (its OpenAPI document, tested against its router).
    let doc: serde_json::Value =
        serde_json::from_str(&api::openapi::document_json()).expect("OpenAPI JSON");
    let expected: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("OpenAPI paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flatten()
                .filter(|(method, _)| {
                    ["get", "put", "post", "delete", "patch", "head", "options"]
                        .contains(&method.as_str())
                })
                .map(move |(method, _)| (method.to_uppercase(), path.clone()))
        })
        .collect();
    assert_eq!(expected.len(), 6, "the API documents {expected:?}");
    assert_eq!(routes, expected, "{fid}: routes");
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

/// The alarms issue 11 (item 5) asks for, on the right metrics and dimensions: the relay's
/// iterator age; ingest's `RecordsFailed` on every consumed topic; the relay's failed sends and
/// poison records; errors and throttles of ingest, relay and api; read and write throttle
/// events of every table and of every index's writes; the HTTP API's 5xx; ingest's offset lag.
/// (Depths of the failure queues and function errors: cfn-lint rule E9005.)
#[test]
fn operational_alarms_watch_the_right_metrics() {
    let template = load_template();
    let functions = functions_by_binary(&template);
    let tables = named_resources(&template, TABLE).unwrap_or_else(|e| panic!("{e}"));
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
                            let (target, attr) = get_att(&v)
                                .unwrap_or_else(|| panic!("{id}: dimension {k} = {v:?}"));
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
    // A partition stuck on a record ingest keeps retrying (it never skips one).
    want(
        "AWS/Lambda",
        "OffsetLag",
        &[("FunctionName", &function_ref("ingest"))],
    );
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
    for t in tables.values() {
        let table = format!("ref:{}", t.id);
        for metric in ["ReadThrottleEvents", "WriteThrottleEvents"] {
            want("AWS/DynamoDB", metric, &[("TableName", &table)]);
        }
        for gsi in t
            .properties
            .get("GlobalSecondaryIndexes")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            want(
                "AWS/DynamoDB",
                "WriteThrottleEvents",
                &[
                    (
                        "GlobalSecondaryIndexName",
                        str_field(gsi, "IndexName", &t.id),
                    ),
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
    for (id, r) in resources_of_type(&template, FUNCTION) {
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

/// The capacity model of issue 15's cost benchmark (`ras_aws::dynamo::capacity`) knows the
/// tables as the template defines them: keys, indexes, their keys and projections (which decide
/// what each index write costs).
#[test]
fn the_capacity_model_has_the_tables_of_the_template() {
    use ras_aws::config::{DEFAULT_OUTBOX_TABLE, DEFAULT_STATE_TABLE};
    use ras_aws::dynamo::capacity::{Projection, OUTBOX_TABLE, STATE_TABLE};
    type Keys = (String, Option<String>);
    let template = load_template();
    let tables = named_resources(&template, TABLE).unwrap_or_else(|e| panic!("{e}"));
    let key_schema = |v: Option<&Value>, what: &str| -> Keys {
        let (mut hash, mut range) = (None, None);
        for key in v
            .and_then(Value::as_sequence)
            .unwrap_or_else(|| panic!("{what}: no KeySchema"))
        {
            let name = str_field(key, "AttributeName", what).to_string();
            match str_field(key, "KeyType", what) {
                "HASH" => hash = Some(name),
                "RANGE" => range = Some(name),
                other => panic!("{what}: KeyType {other}"),
            }
        }
        (hash.unwrap_or_else(|| panic!("{what}: no HASH key")), range)
    };
    for (name, schema) in [
        (DEFAULT_STATE_TABLE, &STATE_TABLE),
        (DEFAULT_OUTBOX_TABLE, &OUTBOX_TABLE),
    ] {
        let table = &tables[name];
        assert_eq!(table.id, schema.name, "{name}");
        assert_eq!(
            key_schema(table.properties.get("KeySchema"), name),
            (
                schema.partition_key.to_string(),
                schema.sort_key.map(str::to_string)
            ),
            "{name}"
        );
        let mut in_template: BTreeMap<String, (Keys, String, Vec<String>)> = BTreeMap::new();
        for gsi in table
            .properties
            .get("GlobalSecondaryIndexes")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let index = str_field(gsi, "IndexName", name).to_string();
            let projection = gsi
                .get("Projection")
                .unwrap_or_else(|| panic!("{index}: no Projection"));
            let non_key = match projection.get("NonKeyAttributes") {
                Some(v) => string_list(Some(v), &index),
                None => Vec::new(),
            };
            let entry = (
                key_schema(gsi.get("KeySchema"), &index),
                str_field(projection, "ProjectionType", &index).to_string(),
                non_key,
            );
            in_template.insert(index, entry);
        }
        let in_model: BTreeMap<String, (Keys, String, Vec<String>)> = schema
            .indexes
            .iter()
            .map(|index| {
                let (ty, non_key) = match index.projection {
                    Projection::All => ("ALL", Vec::new()),
                    Projection::KeysOnly => ("KEYS_ONLY", Vec::new()),
                    Projection::Include(names) => {
                        ("INCLUDE", names.iter().map(|n| n.to_string()).collect())
                    }
                };
                (
                    index.name.to_string(),
                    (
                        (
                            index.partition_key.to_string(),
                            index.sort_key.map(str::to_string),
                        ),
                        ty.to_string(),
                        non_key,
                    ),
                )
            })
            .collect();
        assert_eq!(in_model, in_template, "{name}");
    }
}

/// The index grants name the indexes the code queries, under the names the code uses: the
/// api role may `Query` exactly the user and CJ job indexes `reader.rs` reads, the timer role
/// the facts-wait index; each of them is a GSI of the state table (issue 15 renamed them).
#[test]
fn index_grants_name_the_indexes_the_code_queries() {
    use ras_aws::dynamo::items::{
        INDEX_BY_CJ_JOB, INDEX_BY_FACTS_WAIT, INDEX_BY_USER, INDEX_BY_USER_STATUS,
    };
    let template = load_template();
    let functions = functions_by_binary(&template);
    let roles = resources_of_type(&template, "AWS::IAM::Role");
    let tables = named_resources(&template, TABLE).unwrap_or_else(|e| panic!("{e}"));
    let state = &tables[ras_aws::config::DEFAULT_STATE_TABLE];
    let indexes: BTreeSet<String> = state
        .properties
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .map(|gsi| str_field(gsi, "IndexName", &state.id).to_string())
        .collect();
    let prefix = format!("${{{}.Arn}}/index/", state.id);
    for (binary, expected) in [
        (
            "api",
            vec![INDEX_BY_USER, INDEX_BY_USER_STATUS, INDEX_BY_CJ_JOB],
        ),
        ("timer", vec![INDEX_BY_FACTS_WAIT]),
        ("ingest", vec![]),
        ("relay", vec![]),
    ] {
        let (fid, function) = &functions[binary];
        let (role_id, _) = get_att(&properties(function, fid)["Role"])
            .unwrap_or_else(|| panic!("{fid}: Role must be !GetAtt <role>.Arn"));
        let mut strings = Vec::new();
        all_strings(&roles[&role_id]["Properties"]["Policies"], &mut strings);
        let granted: BTreeSet<&str> = strings
            .iter()
            .filter_map(|s| s.strip_prefix(&prefix))
            .collect();
        let expected: BTreeSet<&str> = expected.into_iter().collect();
        assert_eq!(granted, expected, "{role_id}: state table index grants");
        for name in granted {
            assert!(indexes.contains(name), "{role_id}: {name} is not an index");
        }
    }
}

/// The ingest and timer roles may call on the state table every operation the store's write
/// path sends (`ras_aws::dynamo::WRITE_PATH_OPERATIONS`; a `TransactWriteItems` is authorized
/// action by action, as `PutItem` and `ConditionCheckItem`). moto does not check IAM: a missing
/// grant would only show in AWS, as an `AccessDeniedException` on every such request.
#[test]
fn write_path_roles_grant_every_operation_the_store_sends() {
    let template = load_template();
    let functions = functions_by_binary(&template);
    let roles = resources_of_type(&template, "AWS::IAM::Role");
    let tables = named_resources(&template, TABLE).unwrap_or_else(|e| panic!("{e}"));
    let state = &tables[ras_aws::config::DEFAULT_STATE_TABLE].id;
    let needed: BTreeSet<String> = ras_aws::dynamo::WRITE_PATH_OPERATIONS
        .iter()
        .flat_map(|op| match *op {
            "TransactWriteItems" => vec!["PutItem", "ConditionCheckItem"],
            other => vec![other],
        })
        .map(|op| format!("dynamodb:{op}"))
        .collect();
    for binary in ["ingest", "timer"] {
        let (fid, function) = &functions[binary];
        let (role_id, _) = get_att(&properties(function, fid)["Role"])
            .unwrap_or_else(|| panic!("{fid}: Role must be !GetAtt <role>.Arn"));
        let mut granted = BTreeSet::new();
        let policies = roles[&role_id]["Properties"]["Policies"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{role_id}: Policies"));
        for policy in policies {
            let statements = policy["PolicyDocument"]["Statement"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{role_id}: Statement"));
            for statement in statements {
                let on_state = get_att(&statement["Resource"])
                    .is_some_and(|(id, att)| &id == state && att == "Arn");
                if on_state {
                    granted.extend(string_list(Some(&statement["Action"]), &role_id));
                }
            }
        }
        let missing: Vec<&String> = needed.difference(&granted).collect();
        assert!(
            missing.is_empty(),
            "{role_id} lacks {missing:?} on {state} (granted {granted:?})"
        );
    }
}
