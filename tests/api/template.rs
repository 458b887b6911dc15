//! One table definition: `template.yaml` declares exactly the table that `create_table` (used by
//! the tests and `make dev`) creates. DynamoDB Local describes the real one; the template is read
//! as YAML (CloudFormation's `!Ref`-style tags are kept as tagged values and not needed here).

use std::collections::BTreeSet;

use serde_norway::Value;

type Key = Vec<(String, String)>;

#[derive(Debug, PartialEq, Eq)]
struct TableShape {
    billing: String,
    keys: Key,
    attributes: BTreeSet<(String, String)>,
    indexes: BTreeSet<(String, Key, String)>,
    ttl: (String, bool),
    /// The stream's view type (`None`: no stream).
    stream: Option<String>,
}

fn text(v: &Value, field: &str) -> String {
    v.get(field)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("template: {field} missing in {v:?}"))
        .to_owned()
}

fn key_of(v: &Value) -> Key {
    v.as_sequence()
        .expect("KeySchema is a list")
        .iter()
        .map(|k| (text(k, "AttributeName"), text(k, "KeyType")))
        .collect()
}

fn from_template() -> TableShape {
    let path = format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR"));
    let doc: Value =
        serde_norway::from_str(&std::fs::read_to_string(&path).expect("read template.yaml"))
            .expect("template.yaml is YAML");
    let tables: Vec<&Value> = doc["Resources"]
        .as_mapping()
        .expect("Resources")
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::DynamoDB::Table"))
        .collect();
    assert_eq!(tables.len(), 1, "exactly one table in template.yaml");
    let p = &tables[0]["Properties"];
    TableShape {
        billing: text(p, "BillingMode"),
        keys: key_of(&p["KeySchema"]),
        attributes: p["AttributeDefinitions"]
            .as_sequence()
            .expect("AttributeDefinitions")
            .iter()
            .map(|a| (text(a, "AttributeName"), text(a, "AttributeType")))
            .collect(),
        indexes: p["GlobalSecondaryIndexes"]
            .as_sequence()
            .expect("GlobalSecondaryIndexes")
            .iter()
            .map(|i| {
                (
                    text(i, "IndexName"),
                    key_of(&i["KeySchema"]),
                    text(&i["Projection"], "ProjectionType"),
                )
            })
            .collect(),
        ttl: (
            text(&p["TimeToLiveSpecification"], "AttributeName"),
            p["TimeToLiveSpecification"]["Enabled"].as_bool() == Some(true),
        ),
        stream: p["StreamSpecification"]["StreamViewType"]
            .as_str()
            .map(str::to_owned),
    }
}

async fn from_code() -> TableShape {
    let local = e2e::dynamo::local();
    let client = e2e::dynamo::client(&local.endpoint, None);
    let name = e2e::dynamo::fresh_table(&client).await;
    let t = client
        .describe_table()
        .table_name(&name)
        .send()
        .await
        .expect("describe")
        .table
        .expect("table");
    let key = |k: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> Key {
        k.iter()
            .map(|e| {
                (
                    e.attribute_name().to_owned(),
                    e.key_type().as_str().to_owned(),
                )
            })
            .collect()
    };
    let ttl = client
        .describe_time_to_live()
        .table_name(&name)
        .send()
        .await
        .expect("describe ttl")
        .time_to_live_description
        .expect("ttl description");
    TableShape {
        billing: t
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|b| b.as_str().to_owned())
            .unwrap_or_default(),
        keys: key(t.key_schema()),
        attributes: t
            .attribute_definitions()
            .iter()
            .map(|a| {
                (
                    a.attribute_name().to_owned(),
                    a.attribute_type().as_str().to_owned(),
                )
            })
            .collect(),
        indexes: t
            .global_secondary_indexes()
            .iter()
            .map(|i| {
                (
                    i.index_name().unwrap_or_default().to_owned(),
                    key(i.key_schema()),
                    i.projection()
                        .and_then(|p| p.projection_type())
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default(),
                )
            })
            .collect(),
        ttl: (
            ttl.attribute_name().unwrap_or_default().to_owned(),
            ttl.time_to_live_status().map(|s| s.as_str()) == Some("ENABLED"),
        ),
        stream: t
            .stream_specification()
            .filter(|s| s.stream_enabled())
            .and_then(|s| s.stream_view_type())
            .map(|v| v.as_str().to_owned()),
    }
}

#[tokio::test]
async fn template_declares_the_table_the_code_creates() {
    let template = from_template();
    let code = from_code().await;
    assert_eq!(template, code);
    assert_eq!(template.ttl.0, sandbox::store::TTL_ATTRIBUTE);
    assert_eq!(template.billing, "PAY_PER_REQUEST");
    // The events function's outbox and its sweep's index (issue 19).
    assert_eq!(template.stream.as_deref(), Some("NEW_AND_OLD_IMAGES"));
    assert!(
        template.indexes.contains(&(
            sandbox::store::DUE_INDEX.to_owned(),
            vec![
                ("dueShard".to_owned(), "HASH".to_owned()),
                ("dueAt".to_owned(), "RANGE".to_owned()),
            ],
            "ALL".to_owned(),
        )),
        "{:?}",
        template.indexes
    );
    assert!(template
        .attributes
        .contains(&("dueAt".to_owned(), "N".to_owned())));
}

#[test]
fn template_routes_match_the_local_router() {
    // Every route the HTTP API serves reaches the same function under `make dev`.
    let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
    let template: Value =
        serde_norway::from_str(&std::fs::read_to_string(format!("{root}/template.yaml")).unwrap())
            .unwrap();
    let mut from_template = BTreeSet::new();
    for resource in template["Resources"].as_mapping().unwrap().values() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = text(&resource["Metadata"]["BuildProperties"], "Binary");
        // A function invoked only by a stream (phone) has no events.
        for event in resource["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flat_map(|events| events.values())
            .filter(|e| e["Type"].as_str() == Some("HttpApi"))
        {
            let p = &event["Properties"];
            from_template.insert((
                text(p, "Method").to_uppercase(),
                text(p, "Path"),
                binary.clone(),
            ));
        }
    }
    let cargo: toml::Table = std::fs::read_to_string(format!("{root}/Cargo.toml"))
        .unwrap()
        .parse()
        .expect("Cargo.toml is TOML");
    let router = cargo["workspace"]["metadata"]["lambda"]["watch"]["router"]
        .as_table()
        .expect("[workspace.metadata.lambda.watch.router]");
    let mut from_router = BTreeSet::new();
    for (path, routes) in router {
        // The router's greedy parameter `{*proxy}` is API Gateway's `{proxy+}`.
        let path = path.replace("{*proxy}", "{proxy+}");
        for route in routes.as_array().expect("a list of routes") {
            let field = |name: &str| {
                route[name]
                    .as_str()
                    .expect("method and function")
                    .to_owned()
            };
            from_router.insert((field("method"), path.clone(), field("function")));
        }
    }
    assert_eq!(from_template.len(), 18, "{from_template:?}");
    assert_eq!(from_template, from_router);
}

/// Each function's IAM statements: (actions, resources as written), sorted.
fn policies(doc: &Value, binary: &str) -> BTreeSet<(Vec<String>, String)> {
    let function = doc["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .find(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
        .unwrap_or_else(|| panic!("no function {binary}"));
    let mut out = BTreeSet::new();
    for policy in function["Properties"]["Policies"]
        .as_sequence()
        .expect("explicit policies")
    {
        for st in policy["Statement"].as_sequence().expect("statements") {
            assert_eq!(st["Effect"].as_str(), Some("Allow"));
            let mut actions: Vec<String> = st["Action"]
                .as_sequence()
                .expect("a list of actions")
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect();
            actions.sort();
            out.insert((actions, format!("{:?}", st["Resource"])));
        }
    }
    out
}

#[test]
fn template_is_least_privilege_keeps_secrets_out_and_protects_the_table() {
    let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(format!("{root}/template.yaml")).unwrap();
    let doc: Value = serde_norway::from_str(&text).unwrap();
    let describe = |binary: &str| -> String {
        let mut all = String::new();
        for (actions, resource) in policies(&doc, binary) {
            all.push_str(&format!("{actions:?} on {resource}\n"));
        }
        all
    };
    let only = |binary: &str, expected: &[&str]| {
        let got: BTreeSet<String> = policies(&doc, binary)
            .into_iter()
            .flat_map(|(a, resource)| {
                assert!(
                    resource.contains("Table"),
                    "{binary}: {resource} is not the table"
                );
                a
            })
            .collect();
        let expected: BTreeSet<String> = expected.iter().map(|a| format!("dynamodb:{a}")).collect();
        assert_eq!(got, expected, "{binary}:\n{}", describe(binary));
    };
    only("list", &["GetItem"]);
    only("revoke", &["GetItem", "DeleteItem"]);
    only(
        "create",
        &[
            "GetItem",
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "ConditionCheckItem",
        ],
    );
    only(
        "webhook",
        &["Query", "GetItem", "UpdateItem", "PutItem", "DeleteItem"],
    );
    only("messages", &["GetItem", "Query"]);
    only(
        "webhooks",
        &[
            "GetItem",
            "BatchGetItem",
            "Query",
            "PutItem",
            "UpdateItem",
            "DeleteItem",
        ],
    );
    only(
        "send",
        &[
            "GetItem",
            "BatchGetItem",
            "PutItem",
            "UpdateItem",
            "DeleteItem",
        ],
    );
    // Query only on the indexes.
    for (actions, resource) in policies(&doc, "webhook") {
        if actions.iter().any(|a| a == "dynamodb:Query") {
            assert!(resource.contains("/index/"), "{resource}");
        }
    }

    // Meta's secrets come from Secrets Manager at deploy time, never as literals.
    for secret in [
        "META_ACCESS_TOKEN",
        "META_APP_SECRET",
        "META_WEBHOOK_VERIFY_TOKEN",
    ] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{secret}:")))
            .unwrap_or_else(|| panic!("{secret} is not passed"));
        assert!(line.contains("{{resolve:secretsmanager:"), "{line}");
    }

    let table = doc["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .find(|r| r["Type"].as_str() == Some("AWS::DynamoDB::Table"))
        .unwrap();
    assert_eq!(table["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(table["UpdateReplacePolicy"].as_str(), Some("Retain"));
    let p = &table["Properties"];
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
    assert_eq!(p["SSESpecification"]["SSEEnabled"].as_bool(), Some(true));
}

// ---------- Least privilege by key prefix, throttling, reserved concurrency ----------

fn template() -> Value {
    let path = format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR"));
    serde_norway::from_str(&std::fs::read_to_string(path).expect("read template.yaml"))
        .expect("template.yaml is YAML")
}

fn function<'a>(doc: &'a Value, binary: &str) -> &'a Value {
    doc["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .find(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
        .unwrap_or_else(|| panic!("no function {binary}"))
}

/// The parameter a `!Ref` names (panics on anything else: a literal would bypass the parameter).
fn ref_name(v: &Value) -> String {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str().expect("!Ref name").to_owned(),
        other => panic!("expected a !Ref to a parameter, got {other:?}"),
    }
}

fn parameter_default(doc: &Value, v: &Value) -> i64 {
    let name = ref_name(v);
    let p = &doc["Parameters"][name.as_str()];
    assert_eq!(p["Type"].as_str(), Some("Number"), "{name} is a Number");
    p["Default"]
        .as_i64()
        .unwrap_or_else(|| panic!("{name} has a numeric default"))
}

/// What a statement's `Resource` names.
enum Target {
    /// The table's items (`!GetAtt Table.Arn`).
    Items,
    /// An index of the table, `index/<name>`.
    Index(String),
    /// Anything else, as its `!GetAtt` names it (`Table.StreamArn`, `Queue.Arn`).
    Other(String),
}

fn target_of(binary: &str, resource: &Value) -> Target {
    let written = format!("{resource:?}");
    if let Some(i) = written.find("/index/") {
        return Target::Index(
            written[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
                .collect(),
        );
    }
    match resource {
        Value::Tagged(t) if t.tag == "GetAtt" => match t.value.as_str() {
            Some("Table.Arn") => Target::Items,
            Some(other) => Target::Other(other.to_owned()),
            None => panic!("{binary}: {written}"),
        },
        _ => panic!("{binary}: a resource that is no !GetAtt: {written}"),
    }
}

/// Every grant of a function as "Action target": on the table's items the target is each
/// `dynamodb:LeadingKeys` pattern, or `ANY ITEM` when the statement is not scoped by a
/// `ForAllValues:StringLike` LeadingKeys condition; on an index `index/<name>`, followed by its
/// LeadingKeys patterns (the index's partition key) when it has them; anything else as its
/// `!GetAtt` names it. Actions other than DynamoDB's keep their service prefix.
fn grants(doc: &Value, binary: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for policy in function(doc, binary)["Properties"]["Policies"]
        .as_sequence()
        .expect("explicit policies")
    {
        for st in policy["Statement"].as_sequence().expect("statements") {
            assert_eq!(st["Effect"].as_str(), Some("Allow"));
            let resources: Vec<&Value> = match &st["Resource"] {
                Value::Sequence(items) => items.iter().collect(),
                one => vec![one],
            };
            let leading: Option<Vec<String>> = st["Condition"]["ForAllValues:StringLike"]
                ["dynamodb:LeadingKeys"]
                .as_sequence()
                .map(|ps| ps.iter().map(|p| p.as_str().unwrap().to_owned()).collect());
            let other_conditions = st["Condition"]
                .as_mapping()
                .is_some_and(|m| m.len() != 1 || leading.is_none());
            let scoped = match (&leading, other_conditions) {
                (Some(prefixes), false) => Some(prefixes),
                _ => None,
            };
            for action in st["Action"].as_sequence().expect("a list of actions") {
                let action = action.as_str().unwrap().trim_start_matches("dynamodb:");
                for resource in &resources {
                    match target_of(binary, resource) {
                        Target::Items => match scoped {
                            Some(prefixes) => {
                                for p in prefixes {
                                    out.insert(format!("{action} {p}"));
                                }
                            }
                            None => {
                                out.insert(format!("{action} ANY ITEM"));
                            }
                        },
                        Target::Index(name) => match scoped {
                            Some(partitions) => {
                                for p in partitions {
                                    out.insert(format!("{action} {name} {p}"));
                                }
                            }
                            None => {
                                out.insert(format!("{action} {name}"));
                            }
                        },
                        Target::Other(name) => {
                            assert!(st["Condition"].is_null(), "{binary}: {action} on {name}");
                            out.insert(format!("{action} {name}"));
                        }
                    }
                }
            }
        }
    }
    out
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn create_policy_is_scoped_to_keys_opt_outs_its_session_slot_and_counters() {
    assert_eq!(
        grants(&template(), "create"),
        set(&[
            "GetItem KEY#*",
            "GetItem OPTOUT#*",
            "ConditionCheckItem OPTOUT#*",
            "PutItem USER#*",
            "UpdateItem USER#*",
            "DeleteItem USER#*",
            "ConditionCheckItem USER#*",
            "UpdateItem COUNT#*",
            "DeleteItem COUNT#*",
        ])
    );
}

#[test]
fn list_policy_reads_only_keys_and_sessions() {
    assert_eq!(
        grants(&template(), "list"),
        set(&["GetItem KEY#*", "GetItem USER#*"])
    );
}

#[test]
fn revoke_policy_reads_keys_and_deletes_only_sessions() {
    assert_eq!(
        grants(&template(), "revoke"),
        set(&["GetItem KEY#*", "DeleteItem USER#*"])
    );
}

/// The webhook's grants; the phone and reply functions run its processing in process, so they
/// hold them too.
fn webhook_grants() -> Vec<&'static str> {
    vec![
        "Query index/byPhone",
        "Query index/byWaId",
        "GetItem OPTOUT#*",
        "GetItem BSUID#*",
        "GetItem OUTMSG#*",
        "GetItem LASTSENT#*",
        "UpdateItem USER#*",
        "UpdateItem OPTOUT#*",
        "UpdateItem CONV#*",
        "UpdateItem BSUID#*",
        "PutItem INBOUND#*",
        "PutItem CONV#*",
        "DeleteItem USER#*",
        "DeleteItem BSUID#*",
    ]
}

/// The reads of the table's stream every function that an event source mapping feeds holds.
fn stream_reads() -> impl Iterator<Item = String> {
    [
        "DescribeStream",
        "GetRecords",
        "GetShardIterator",
        "ListStreams",
    ]
    .into_iter()
    .map(|action| format!("{action} Table.StreamArn"))
}

#[test]
fn webhook_policy_touches_sessions_opt_outs_and_activating_message_ids_and_queries_the_two_indexes()
{
    assert_eq!(grants(&template(), "webhook"), set(&webhook_grants()));
}

#[test]
fn send_policy_reads_its_session_and_writes_only_its_own_message_items() {
    assert_eq!(
        grants(&template(), "send"),
        set(&[
            "GetItem KEY#*",
            "GetItem USER#*",
            "GetItem IDEM#*",
            "BatchGetItem KEY#*",
            "BatchGetItem USER#*",
            "BatchGetItem IDEM#*",
            "PutItem IDEM#*",
            "UpdateItem IDEM#*",
            "DeleteItem IDEM#*",
            "UpdateItem COUNT#MSG#USER#*",
            "UpdateItem CONV#*",
            "PutItem OUTMSG#*",
            "PutItem LASTSENT#*",
        ])
    );
}

#[test]
fn messages_policy_reads_keys_sessions_and_conversations() {
    assert_eq!(
        grants(&template(), "messages"),
        set(&["GetItem KEY#*", "GetItem USER#*", "Query CONV#*"])
    );
}

#[test]
fn webhooks_policy_touches_only_keys_the_users_webhooks_their_delivery_log_and_deliveries() {
    assert_eq!(
        grants(&template(), "webhooks"),
        set(&[
            "GetItem KEY#*",
            "Query WEBHOOKS#*",
            "GetItem WEBHOOKS#*",
            "PutItem WEBHOOKS#*",
            "UpdateItem WEBHOOKS#*",
            "DeleteItem WEBHOOKS#*",
            "PutItem WHLOG#*",
            "UpdateItem WHLOG#*",
            "Query WHLOG#*",
            "BatchGetItem WHLOG#*",
            "BatchGetItem WHDLV#*",
            "UpdateItem WHDLV#*",
            "PutItem WHDLV#*",
        ])
    );
}

#[test]
fn template_never_allows_deliveries_to_private_targets() {
    let text = std::fs::read_to_string(format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR")))
        .expect("read template.yaml");
    let settings = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter(|l| l.contains("WEBHOOK_ALLOW_PRIVATE_TARGETS"))
        .collect::<Vec<_>>();
    assert!(settings.is_empty(), "{settings:?}");
    let doc = template();
    for binary in ["webhooks", "events"] {
        let variables = &function(&doc, binary)["Properties"]["Environment"]["Variables"];
        assert_eq!(
            variables["WEBHOOK_TIMEOUT_MS"].as_str(),
            Some("5000"),
            "{binary}"
        );
        assert!(
            variables["WEBHOOK_RETRY_SCHEDULE_SECONDS"]
                .as_str()
                .is_some(),
            "{binary}"
        );
    }
}

#[test]
fn the_webhooks_functions_limits_are_parameters_defaulting_to_the_codes_defaults() {
    let doc = template();
    let variables = &function(&doc, "webhooks")["Properties"]["Environment"]["Variables"];
    for (variable, default) in [
        (
            "USER_WEBHOOK_LIMIT",
            sandbox::config::DEFAULT_USER_WEBHOOK_LIMIT,
        ),
        (
            "USER_WEBHOOK_ATTEMPTS_PER_MINUTE",
            sandbox::config::DEFAULT_USER_WEBHOOK_ATTEMPTS_PER_MINUTE,
        ),
    ] {
        let name = ref_name(&variables[variable]);
        let parameter = &doc["Parameters"][name.as_str()];
        assert_eq!(
            parameter["Default"].as_str(),
            Some(default.to_string().as_str()),
            "{variable}"
        );
        assert_eq!(parameter["AllowedPattern"].as_str(), Some("^[0-9]+$"));
    }
}

#[test]
fn http_api_is_throttled_and_create_tighter_than_the_rest() {
    let doc = template();
    let api = doc["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .find(|r| r["Type"].as_str() == Some("AWS::Serverless::HttpApi"))
        .expect("an HttpApi");
    let default = &api["Properties"]["DefaultRouteSettings"];
    let rate = parameter_default(&doc, &default["ThrottlingRateLimit"]);
    let burst = parameter_default(&doc, &default["ThrottlingBurstLimit"]);
    assert!(rate >= 1 && burst >= rate, "rate {rate}, burst {burst}");

    // The create route, named as its event declares it.
    let event = &function(&doc, "create")["Properties"]["Events"]["Create"]["Properties"];
    let route = format!(
        "{} {}",
        event["Method"].as_str().unwrap(),
        event["Path"].as_str().unwrap()
    );
    let create = &api["Properties"]["RouteSettings"][route.as_str()];
    let create_rate = parameter_default(&doc, &create["ThrottlingRateLimit"]);
    let create_burst = parameter_default(&doc, &create["ThrottlingBurstLimit"]);
    assert!(
        create_rate >= 1 && create_rate < rate,
        "{route}: {create_rate}"
    );
    assert!(
        create_burst >= create_rate && create_burst < burst,
        "{route}"
    );
}

#[test]
fn webhook_has_reserved_concurrency_so_a_flood_cannot_starve_meta() {
    let doc = template();
    let reserved = &function(&doc, "webhook")["Properties"]["ReservedConcurrentExecutions"];
    assert!(parameter_default(&doc, reserved) >= 1);
}

// ---------- The events function (issue 19): its stream, its sweep, its dead letters ----------

/// The event source mapping that feeds the function built from `binary`.
fn mapping_of<'a>(doc: &'a Value, binary: &str) -> &'a Value {
    let id = function_id(doc, binary);
    let found: Vec<&Value> = doc["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Lambda::EventSourceMapping"))
        .filter(|r| intrinsic(&r["Properties"]["FunctionName"]).1.as_str() == Some(id))
        .collect();
    assert_eq!(found.len(), 1, "exactly one mapping feeds {binary}");
    found[0]
}

/// The dead-letter queue a mapping's on-failure destination names: its logical id and it.
fn dead_letters_of<'a>(doc: &'a Value, mapping: &Value) -> (&'a str, &'a Value) {
    let (tag, destination) =
        intrinsic(&mapping["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]);
    assert_eq!(tag, "GetAtt");
    let arn = destination.as_str().expect("Queue.Arn");
    let queue = arn.strip_suffix(".Arn").expect("a queue's Arn");
    let (name, resource) = doc["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .find(|(name, _)| name.as_str() == Some(queue))
        .expect("the queue the destination names");
    assert_eq!(resource["Type"].as_str(), Some("AWS::SQS::Queue"));
    (name.as_str().unwrap(), resource)
}

/// The logical id of the function built from this binary.
fn function_id<'a>(doc: &'a Value, binary: &str) -> &'a str {
    doc["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
        .and_then(|(name, _)| name.as_str())
        .unwrap_or_else(|| panic!("no function {binary}"))
}

/// The `(tag, value)` of a short-form intrinsic (`!GetAtt Table.StreamArn`, `!Ref X`).
fn intrinsic(v: &Value) -> (String, &Value) {
    match v {
        Value::Tagged(t) => (
            t.tag.to_string().trim_start_matches('!').to_owned(),
            &t.value,
        ),
        other => panic!("expected an intrinsic, got {other:?}"),
    }
}

#[test]
fn events_policy_grants_exactly_what_its_code_does_reads_its_stream_and_dead_letters() {
    use sandbox::store::ItemKind;
    let doc = template();
    // Per key prefix, the actions the events function's code makes: it reads the user's
    // webhooks and records outcomes on them, but never creates or deletes one; it logs
    // attempts (the entry, its index items and its webhook's counts in one transaction), never
    // reads the log; it claims and moves deliveries, never deletes them.
    let webhooks = ItemKind::Webhook.prefix();
    let log = ItemKind::WebhookLog.prefix();
    let deliveries = ItemKind::Delivery.prefix();
    let mut expected: BTreeSet<String> = [
        format!("Query {webhooks}*"),
        format!("GetItem {webhooks}*"),
        format!("UpdateItem {webhooks}*"),
        format!("PutItem {log}*"),
        format!("UpdateItem {log}*"),
        format!("PutItem {deliveries}*"),
        format!("UpdateItem {deliveries}*"),
    ]
    .into_iter()
    .collect();
    // The sweep reads every shard of the due index, and nothing else of it.
    expected.insert(format!(
        "Query index/{} {}*",
        sandbox::store::DUE_INDEX,
        sandbox::store::DUE_SHARD_PREFIX
    ));
    assert!(sandbox::store::Key::due_shards()
        .all(|shard| shard.starts_with(sandbox::store::DUE_SHARD_PREFIX)));
    expected.extend(stream_reads());
    let (queue, _) = dead_letters_of(&doc, mapping_of(&doc, "events"));
    expected.insert(format!("sqs:SendMessage {queue}.Arn"));
    assert_eq!(grants(&doc, "events"), expected);

    // No SAM event that would attach a managed policy of its own (a DynamoDB event attaches
    // AWSLambdaDynamoDBExecutionRole: stream reads on every stream of the account), and no
    // role of our own in place of the policies above.
    let f = &function(&doc, "events")["Properties"];
    assert!(f["Role"].is_null(), "{:?}", f["Role"]);
    for (name, event) in f["Events"].as_mapping().expect("events").iter() {
        assert_eq!(event["Type"].as_str(), Some("Schedule"), "{name:?}");
    }
}

/// What every stream mapping must be, for the function built from `binary`: this table's stream
/// from `LATEST` into that function; only the records the function reports failed retried,
/// bisected, at most 10 times and while at most a day old; what is given up on kept 14 days in
/// an encrypted dead-letter queue. Answers the queue's logical id.
fn assert_reports_failures_bounded_and_dead_lettered<'a>(doc: &'a Value, binary: &str) -> &'a str {
    let mapping = mapping_of(doc, binary);
    let m = &mapping["Properties"];
    let (tag, target) = intrinsic(&m["FunctionName"]);
    assert_eq!(
        (tag.as_str(), target.as_str()),
        ("Ref", Some(function_id(doc, binary)))
    );
    let (tag, source) = intrinsic(&m["EventSourceArn"]);
    assert_eq!(
        (tag.as_str(), source.as_str()),
        ("GetAtt", Some("Table.StreamArn"))
    );
    assert_eq!(m["StartingPosition"].as_str(), Some("LATEST"));

    // Only an infrastructure failure fails a record, and only that record is retried.
    let responses: Vec<&str> = m["FunctionResponseTypes"]
        .as_sequence()
        .expect("FunctionResponseTypes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(responses, ["ReportBatchItemFailures"]);
    assert_eq!(m["BisectBatchOnFunctionError"].as_bool(), Some(true));
    // Bounded: left out, both are -1 (retry until the record expires from the stream).
    let retries = m["MaximumRetryAttempts"]
        .as_i64()
        .expect("MaximumRetryAttempts");
    assert!((0..=10).contains(&retries), "{retries}");
    let age = m["MaximumRecordAgeInSeconds"]
        .as_i64()
        .expect("MaximumRecordAgeInSeconds");
    assert!((60..=86_400).contains(&age), "{age}");

    // What is given up on goes to the dead-letter queue, kept 14 days, encrypted.
    let (queue, dlq) = dead_letters_of(doc, mapping);
    let q = &dlq["Properties"];
    assert_eq!(q["MessageRetentionPeriod"].as_i64(), Some(14 * 86_400));
    assert_eq!(q["SqsManagedSseEnabled"].as_bool(), Some(true));
    queue
}

#[test]
fn the_stream_reaches_events_filtered_reporting_item_failures_bisected_bounded_and_dead_lettered() {
    let doc = template();
    let mapping = mapping_of(&doc, "events");
    let m = &mapping["Properties"];
    let queue = assert_reports_failures_bounded_and_dead_lettered(&doc, "events");
    assert_eq!(m["BatchSize"].as_i64(), Some(100));
    let output = &doc["Outputs"]["EventsDeadLetterQueueUrl"]["Value"];
    let (tag, named) = intrinsic(output);
    assert_eq!((tag.as_str(), named.as_str()), ("Ref", Some(queue)));

    // Only sessions and conversation messages (the items whose changes are events) invoke it.
    let filters = m["FilterCriteria"]["Filters"]
        .as_sequence()
        .expect("FilterCriteria.Filters");
    assert_eq!(filters.len(), 1);
    let pattern: serde_json::Value =
        serde_json::from_str(filters[0]["Pattern"].as_str().expect("a Pattern"))
            .expect("the pattern is JSON");
    // make dev's stream-pump applies the very same pattern.
    assert_eq!(
        filters[0]["Pattern"].as_str(),
        Some(stream_pump::filter::EVENTS[0])
    );
    let prefixes = [
        sandbox::store::ItemKind::Session.prefix(),
        sandbox::store::ItemKind::Message.prefix(),
    ];
    assert_eq!(
        pattern,
        serde_json::json!({ "dynamodb": { "Keys": { "pk": { "S": [
            { "prefix": prefixes[0] }, { "prefix": prefixes[1] }
        ] } } } })
    );
}

#[test]
fn events_sweeps_due_retries_every_minute() {
    let doc = template();
    let sweeps: Vec<&Value> = function(&doc, "events")["Properties"]["Events"]
        .as_mapping()
        .expect("events")
        .values()
        .filter(|e| e["Type"].as_str() == Some("Schedule"))
        .collect();
    assert_eq!(sweeps.len(), 1);
    let p = &sweeps[0]["Properties"];
    assert_eq!(p["Schedule"].as_str(), Some("rate(1 minute)"));
    assert_ne!(p["Enabled"].as_bool(), Some(false));
    assert_ne!(p["State"].as_str(), Some("DISABLED"));
}

#[test]
fn events_outlasts_a_round_of_attempts_and_reserves_concurrency_only_when_asked() {
    let doc = template();
    let f = &function(&doc, "events")["Properties"];
    let variables = &f["Environment"]["Variables"];
    let attempt_ms: i64 = variables["WEBHOOK_TIMEOUT_MS"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("WEBHOOK_TIMEOUT_MS");
    let in_flight: i64 = variables["WEBHOOK_CONCURRENCY"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("WEBHOOK_CONCURRENCY");
    assert!(in_flight >= 1);
    // An attempt and its writes (two DynamoDB operations of at most 4 s) fit many times over.
    let timeout = f["Timeout"].as_i64().expect("Timeout");
    assert!(timeout * 1000 >= 4 * (attempt_ms + 8_000), "{timeout}");

    // `!If [Condition, !Ref Parameter, !Ref AWS::NoValue]`, the condition "parameter != 0".
    let (tag, branches) = intrinsic(&f["ReservedConcurrentExecutions"]);
    assert_eq!(tag, "If");
    let branches = branches.as_sequence().expect("!If's list");
    let parameter = ref_name(&branches[1]);
    assert_eq!(ref_name(&branches[2]), "AWS::NoValue");
    let p = &doc["Parameters"][parameter.as_str()];
    assert_eq!(p["Type"].as_str(), Some("Number"));
    assert_eq!(p["MinValue"].as_i64(), Some(0));
    let condition = &doc["Conditions"][branches[0].as_str().expect("a condition's name")];
    let (tag, inner) = intrinsic(condition);
    assert_eq!(tag, "Not");
    let (tag, equals) = intrinsic(&inner.as_sequence().expect("!Not's list")[0]);
    assert_eq!(tag, "Equals");
    let equals = equals.as_sequence().expect("!Equals's list");
    assert_eq!(ref_name(&equals[0]), parameter);
    assert_eq!(equals[1].as_i64(), Some(0));
}

#[test]
fn every_function_logs_to_its_own_group_with_the_retention() {
    let doc = template();
    let resources = doc["Resources"].as_mapping().unwrap();
    let mut binaries = Vec::new();
    for function in resources
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function"))
    {
        let binary = text(&function["Metadata"]["BuildProperties"], "Binary");
        let p = &function["Properties"];
        let (tag, name) = intrinsic(&p["FunctionName"]);
        let name = format!("{tag} {}", name.as_str().unwrap());
        assert_eq!(name, format!("Sub ${{AWS::StackName}}-{binary}"));
        let group = &doc["Resources"][ref_name(&p["LoggingConfig"]["LogGroup"]).as_str()];
        assert_eq!(
            group["Type"].as_str(),
            Some("AWS::Logs::LogGroup"),
            "{binary}"
        );
        let (tag, group_name) = intrinsic(&group["Properties"]["LogGroupName"]);
        let group_name = format!("{tag} {}", group_name.as_str().unwrap());
        assert_eq!(
            group_name,
            format!("Sub /aws/lambda/${{AWS::StackName}}-{binary}")
        );
        assert_eq!(
            ref_name(&group["Properties"]["RetentionInDays"]),
            "LogRetentionDays"
        );
        binaries.push(binary);
    }
    binaries.sort();
    assert_eq!(
        binaries,
        [
            "console", "create", "events", "list", "messages", "phone", "reply", "revoke", "send",
            "webhook", "webhooks"
        ]
    );
}

#[test]
fn the_console_has_no_table_access_at_all_and_serves_only_its_two_routes() {
    let doc = template();
    let f = &function(&doc, "console")["Properties"];
    // No statements and no role of its own: SAM's basic execution role, which writes logs only.
    assert!(f["Policies"].is_null(), "{:?}", f["Policies"]);
    assert!(f["Role"].is_null(), "{:?}", f["Role"]);
    assert!(f["Environment"].is_null(), "{:?}", f["Environment"]);
    let mut routes: Vec<(String, String)> = f["Events"]
        .as_mapping()
        .expect("events")
        .values()
        .map(|e| {
            assert_eq!(e["Type"].as_str(), Some("HttpApi"));
            let p = &e["Properties"];
            (text(p, "Method"), text(p, "Path"))
        })
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            ("GET".to_owned(), "/console".to_owned()),
            ("GET".to_owned(), "/console/{proxy+}".to_owned()),
        ]
    );
}

// ---------- The virtual phones: the reply route and the phone function on the stream ----------

#[test]
fn reply_policy_is_the_webhooks_and_reads_the_callers_key_session_and_conversation() {
    let doc = template();
    let mut expected = webhook_grants();
    expected.extend([
        "GetItem KEY#*",
        "GetItem USER#*",
        "GetItem CONV#*",
        "Query CONV#*",
    ]);
    assert_eq!(grants(&doc, "reply"), set(&expected));
    assert_eq!(grants(&doc, "webhook"), set(&webhook_grants()));
    let variables = &function(&doc, "reply")["Properties"]["Environment"]["Variables"];
    let secret = variables["META_APP_SECRET"].as_str().unwrap_or_default();
    assert!(secret.contains("{{resolve:secretsmanager:"), "{secret}");
}

#[test]
fn phone_policy_is_the_webhooks_reads_its_stream_and_dead_letters() {
    let doc = template();
    let (queue, _) = dead_letters_of(&doc, mapping_of(&doc, "phone"));
    let mut expected = set(&webhook_grants());
    expected.extend(stream_reads());
    expected.insert(format!("sqs:SendMessage {queue}.Arn"));
    assert_eq!(grants(&doc, "phone"), expected);
    let f = &function(&doc, "phone")["Properties"];
    assert!(f["Role"].is_null(), "{:?}", f["Role"]);
    assert!(f["Events"].is_null(), "only its own mapping invokes it");
    let secret = f["Environment"]["Variables"]["META_APP_SECRET"]
        .as_str()
        .unwrap_or_default();
    assert!(secret.contains("{{resolve:secretsmanager:"), "{secret}");
}

#[test]
fn the_stream_reaches_the_phone_filtered_as_make_devs_pump_does_bounded_and_dead_lettered() {
    let doc = template();
    let m = &mapping_of(&doc, "phone")["Properties"];
    let queue = assert_reports_failures_bounded_and_dead_lettered(&doc, "phone");
    let events_queue = assert_reports_failures_bounded_and_dead_lettered(&doc, "events");
    assert_ne!(queue, events_queue, "a dead-letter queue of its own");

    // The patterns make dev's stream-pump applies, each valid JSON.
    let patterns: Vec<&str> = m["FilterCriteria"]["Filters"]
        .as_sequence()
        .expect("FilterCriteria.Filters")
        .iter()
        .map(|f| f["Pattern"].as_str().expect("a Pattern"))
        .collect();
    assert_eq!(patterns, stream_pump::filter::PHONE);
    for p in patterns {
        serde_json::from_str::<serde_json::Value>(p).expect("the pattern is JSON");
    }
    let output = &doc["Outputs"]["PhoneDeadLetterQueueUrl"]["Value"];
    let (tag, named) = intrinsic(output);
    assert_eq!((tag.as_str(), named.as_str()), ("Ref", Some(queue)));
}

#[test]
fn the_virtual_phones_are_configured_for_every_function_with_their_defaults() {
    let doc = template();
    let globals = &doc["Globals"]["Function"]["Environment"]["Variables"];
    for (variable, parameter, default) in [
        ("VIRTUAL_PHONES", "VirtualPhones", "true"),
        ("VIRTUAL_DAILY_SEND_LIMIT", "VirtualDailySendLimit", "1000"),
        (
            "VIRTUAL_DAILY_MESSAGE_LIMIT",
            "VirtualDailyMessageLimit",
            "1000",
        ),
    ] {
        assert_eq!(ref_name(&globals[variable]), parameter);
        assert_eq!(
            doc["Parameters"][parameter]["Default"].as_str(),
            Some(default),
            "{parameter}"
        );
    }
}
