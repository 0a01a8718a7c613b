//! Reading `template.yaml` (compiled in), the one definition of the project's tables and
//! queues: the local setup (`infra/local/create_resources.py`), the private copies of
//! [`crate::resources`] and the template tests all take them from here.
//!
//! Names: a table's `TableName` / a queue's `QueueName` is `!Sub "${AWS::StackName}-<name>"`
//! (or a plain string); `<name>` is the local name. Intrinsics are accepted in the short
//! (`!Ref X`) and the long (`{"Ref": X}`, `{"Fn::GetAtt": ...}`) form.

use std::collections::BTreeMap;

use serde_yaml::Value;

/// `template.yaml`.
pub const TEMPLATE_YAML: &str = include_str!("../../../template.yaml");

pub const TABLE: &str = "AWS::DynamoDB::Table";
pub const QUEUE: &str = "AWS::SQS::Queue";
pub const FUNCTION: &str = "AWS::Serverless::Function";

#[derive(Debug, thiserror::Error)]
#[error("template.yaml: {0}")]
pub struct TemplateError(pub String);

/// The parsed template.
pub fn template() -> Result<Value, TemplateError> {
    serde_yaml::from_str(TEMPLATE_YAML).map_err(|e| TemplateError(e.to_string()))
}

/// An intrinsic function call, short (`!Ref X`) or long (`{Ref: X}`, `{"Fn::GetAtt": ...}`)
/// form: the function name without prefix (`Ref`, `GetAtt`, `Sub`, ...) and its argument.
pub fn intrinsic(v: &Value) -> Option<(String, &Value)> {
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

/// Logical id named by `!Ref X`, if `v` is one.
pub fn ref_target(v: &Value) -> Option<String> {
    match intrinsic(v)? {
        (f, Value::String(id)) if f == "Ref" => Some(id.clone()),
        _ => None,
    }
}

/// (logical id, attribute) of `!GetAtt X.Attr` (or `!GetAtt [X, Attr]`, or the long form).
pub fn get_att(v: &Value) -> Option<(String, String)> {
    match intrinsic(v)? {
        (f, Value::String(s)) if f == "GetAtt" => s
            .split_once('.')
            .map(|(a, b)| (a.to_string(), b.to_string())),
        (f, Value::Sequence(s)) if f == "GetAtt" && s.len() == 2 => {
            Some((s[0].as_str()?.to_string(), s[1].as_str()?.to_string()))
        }
        _ => None,
    }
}

/// The local name behind a `TableName` / `QueueName` value (see the module comment).
pub fn resource_name(v: &Value) -> Option<String> {
    // Match on the variants: serde_yaml's `as_str` also sees through tags (`!Sub "x"` -> "x").
    match (v, intrinsic(v)) {
        (Value::String(s), None) => Some(s.clone()),
        (_, Some((f, Value::String(arg)))) if f == "Sub" => arg
            .strip_prefix("${AWS::StackName}-")
            .filter(|rest| !rest.contains("${"))
            .map(str::to_string),
        _ => None,
    }
}

/// Template resources of one type: logical id -> resource.
pub fn resources_of_type<'a>(template: &'a Value, ty: &str) -> BTreeMap<String, &'a Value> {
    template
        .get("Resources")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
        .filter_map(|(id, r)| Some((id.as_str()?.to_string(), r)))
        .collect()
}

/// A table or queue of the template.
#[derive(Clone, Debug)]
pub struct Resource<'a> {
    pub id: String,
    /// The local name (see the module comment).
    pub name: String,
    pub properties: &'a Value,
}

/// The tables (`ty` = [`TABLE`]) or queues ([`QUEUE`]) of the template, by local name.
pub fn named_resources<'a>(
    template: &'a Value,
    ty: &str,
) -> Result<BTreeMap<String, Resource<'a>>, TemplateError> {
    let key = if ty == TABLE {
        "TableName"
    } else {
        "QueueName"
    };
    let mut out = BTreeMap::new();
    for (id, r) in resources_of_type(template, ty) {
        let properties = r
            .get("Properties")
            .ok_or_else(|| TemplateError(format!("{id}: no Properties")))?;
        let name = properties.get(key).and_then(resource_name).ok_or_else(|| {
            TemplateError(format!(
                "{id}: {key} must be a plain string or !Sub \"${{AWS::StackName}}-<name>\""
            ))
        })?;
        let resource = Resource {
            id: id.clone(),
            name: name.clone(),
            properties,
        };
        if out.insert(name.clone(), resource).is_some() {
            return Err(TemplateError(format!("two resources named {name}")));
        }
    }
    Ok(out)
}

/// The environment variables of the functions that carry a table or queue: variable -> logical
/// id of the resource (`VAR: !Ref <table or queue>`, in `Globals` or any function).
pub fn resource_variables(template: &Value) -> Result<BTreeMap<String, String>, TemplateError> {
    let is_resource = |id: &str| {
        template
            .get("Resources")
            .and_then(|r| r.get(id))
            .and_then(|r| r.get("Type"))
            .and_then(Value::as_str)
            .is_some_and(|t| t == TABLE || t == QUEUE)
    };
    let globals = template.get("Globals").and_then(|g| g.get("Function"));
    let functions = resources_of_type(template, FUNCTION);
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for props in globals
        .into_iter()
        .chain(functions.values().filter_map(|f| f.get("Properties")))
    {
        let vars = props
            .get("Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping);
        for (var, value) in vars.into_iter().flatten() {
            let (Some(var), Some(id)) = (var.as_str(), ref_target(value)) else {
                continue;
            };
            if !is_resource(&id) {
                continue;
            }
            if let Some(other) = out.insert(var.to_string(), id.clone()) {
                if other != id {
                    return Err(TemplateError(format!(
                        "{var} is !Ref {id} in one function, !Ref {other} in another"
                    )));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(resource_name(&v["a"]).as_deref(), Some("ras-state"));
            assert_eq!(get_att(&v["b"]), Some(("Dlq".into(), "Arn".into())));
            assert_eq!(ref_target(&v["c"]).as_deref(), Some("StateTable"));
        }
        assert_eq!(resource_name(&short["d"]).as_deref(), Some("ras-x"));
    }

    #[test]
    fn other_name_forms_are_rejected() {
        for text in [
            "!Sub \"${Env}-ras-state\"",
            "!Ref Name",
            "{\"Fn::Join\": [\"\", [a]]}",
        ] {
            let v: Value = serde_yaml::from_str(text).unwrap();
            assert_eq!(resource_name(&v), None, "{text}");
        }
    }

    #[test]
    fn the_template_defines_the_tables_queues_and_variables() {
        let t = template().unwrap();
        let tables = named_resources(&t, TABLE).unwrap();
        assert_eq!(
            tables.keys().collect::<Vec<_>>(),
            ["ras-outbox", "ras-state"]
        );
        let queues = named_resources(&t, QUEUE).unwrap();
        assert!(queues.contains_key("ras-events.fifo"), "{queues:?}");
        let vars = resource_variables(&t).unwrap();
        assert_eq!(vars["RAS_STATE_TABLE"], tables["ras-state"].id);
        assert_eq!(vars["RAS_EVENTS_QUEUE_URL"], queues["ras-events.fifo"].id);
    }
}
