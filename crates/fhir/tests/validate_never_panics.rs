//! `validate` must never panic, whatever JSON it is given. The generator mixes realistic FHIR keys
//! (so that the validator gets deep into resources) with arbitrary ones and values of every shape.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

const KEYS: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "text",
    "div",
    "status",
    "contained",
    "extension",
    "modifierExtension",
    "url",
    "valueString",
    "valueQuantity",
    "valueInteger",
    "valueBoolean",
    "value",
    "_valueString",
    "name",
    "given",
    "_given",
    "family",
    "birthDate",
    "_birthDate",
    "code",
    "coding",
    "system",
    "subject",
    "reference",
    "entry",
    "resource",
    "parameter",
    "part",
    "item",
    "component",
    "effectiveDateTime",
    "issued",
    "lastUpdated",
    "profile",
    "contact",
    "telecom",
    "",
    "_",
    "__proto__",
];

const RESOURCE_TYPES: &[&str] = &[
    "Patient",
    "Observation",
    "Bundle",
    "Parameters",
    "Questionnaire",
    "QuestionnaireResponse",
    "Condition",
    "Resource",
    "Foo",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop::sample::select(RESOURCE_TYPES).prop_map(|s| json!(s)),
        "[ -~]{0,12}".prop_map(Value::String),
        prop::sample::select(
            &[
                "2023-02-30",
                "2020-01-01T00:00:00Z",
                "urn:uuid:1",
                "Patient/1",
                "#x",
                "",
                " a"
            ][..]
        )
        .prop_map(|s| json!(s)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(KEYS).prop_map(str::to_owned),
                        "[a-z_]{1,6}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

fn resource() -> impl Strategy<Value = Value> {
    (prop::sample::select(RESOURCE_TYPES), json_value()).prop_map(|(rt, body)| {
        let mut obj = match body {
            Value::Object(o) => o,
            other => {
                let mut o = Map::new();
                o.insert("extension".to_owned(), other);
                o
            }
        };
        obj.insert("resourceType".to_owned(), json!(rt));
        Value::Object(obj)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn validate_never_panics_on_arbitrary_json(value in json_value()) {
        let _ = medicus_fhir::validate(&value);
    }

    #[test]
    fn validate_never_panics_on_resource_shaped_json(value in resource()) {
        let issues = medicus_fhir::validate(&value);
        for issue in issues {
            prop_assert!(!issue.expression.is_empty());
            prop_assert!(!issue.message.is_empty());
        }
    }
}
