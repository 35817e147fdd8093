//! Property tests: the parser and evaluator never panic, and canonical printing round-trips.

use medicus_fhirpath::{Env, Expression};
use proptest::prelude::*;
use serde_json::Value;

/// Expressions exercising navigation, choice types, functions and operators.
const EXPRESSIONS: &[&str] = &[
    "Patient.name.given",
    "name.where(use = 'official').family & ', ' & name.given.first()",
    "Observation.value.as(Quantity).value > 5",
    "(Observation.value as CodeableConcept).coding.code",
    "subject.where(resolve() is Patient)",
    "descendants().count()",
    "children().ofType(string).length()",
    "extension('http://x').value",
    "birthDate.extension.value",
    "a.b.c.toString().toInteger() + 1 div 0",
    "x.repeat(item).count() < 3 implies y.exists()",
    "value.toDecimal() * 2.5 - value.toInteger()",
    "id.substring(1, 2).matches('^a.*') or id.replaceMatches('[0-9]', 'n') = 'x'",
    "effective > @2020-01-01 and effective <= now()",
    "value ~ 3 'mg' or value = 3 days",
    "component.value.select($this is Quantity)",
    "(a | b | c).distinct().isDistinct()",
    "x.aggregate($total + $this, 0)",
    "a.iif(b, c, d).single()",
    "x.toQuantity('g')",
    "x.abs() + x.ceiling() + x.floor() + x.round(2) + x.sqrt() + x.ln() + x.exp() + x.log(10) + x.power(2)",
    "x.split(',').join('|').upper().lower().trim().toChars().count()",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[-0-9.eE]{1,12}".prop_filter_map("number", |s| serde_json::from_str::<Value>(&s).ok()),
        prop_oneof![
            "[a-z0-9:/#._ -]{0,12}",
            Just("Patient/1".to_string()),
            Just("2020-01-01T10:00:00Z".to_string()),
            Just("#c1".to_string()),
        ]
        .prop_map(Value::String),
    ];
    let keys = prop_oneof![
        Just("resourceType"),
        Just("name"),
        Just("given"),
        Just("_given"),
        Just("value"),
        Just("valueQuantity"),
        Just("valueString"),
        Just("_valueString"),
        Just("extension"),
        Just("url"),
        Just("a"),
        Just("b"),
        Just("x"),
        Just("id"),
        Just("item"),
        Just("contained"),
        Just("reference"),
        Just("subject"),
        Just("effectiveDateTime"),
        Just("unit"),
        Just("code"),
        Just("component"),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|kvs| {
                Value::Object(kvs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics(src in "\\PC{0,60}") {
        let _ = Expression::parse(&src);
    }

    #[test]
    fn parser_never_panics_on_fhirpath_like_text(src in "[a-zA-Z0-9 .()\\[\\]{}'`@%$:+*/&|=~!<>,-]{0,60}") {
        if let Ok(e) = Expression::parse(&src) {
            // Whatever parses prints to text that parses to the same tree.
            let printed = e.to_canonical_string();
            let again = Expression::parse(&printed);
            prop_assert!(again.is_ok(), "{src:?} printed as {printed:?} does not parse");
            if let Ok(again) = again {
                prop_assert_eq!(again.to_canonical_string(), printed);
            }
            let _ = e.evaluate(&Value::Null, &Env::default());
        }
    }

    #[test]
    fn arithmetic_never_panics(
        a in "-?[0-9]{1,40}(\\.[0-9]{1,40})?( '(mg|g|cm|m|s|wk|a|mo)'| days| years)?",
        b in "-?[0-9]{1,40}(\\.[0-9]{1,40})?( '(mg|g|cm|m|s|wk|a|mo)'| days| months)?",
        op in prop::sample::select(vec!["+", "-", "*", "/", "div", "mod", "<", ">=", "=", "~", "!=", "&", "|"]),
        f in prop::sample::select(vec!["abs()", "ceiling()", "floor()", "round(3)", "sqrt()", "ln()", "exp()",
            "log(2)", "power(3)", "power(0.5)", "truncate()", "toString()", "toInteger()", "lowBoundary()",
            "highBoundary(2)", "precision()", "toQuantity('g')", "not()"]),
        date in prop::sample::select(vec!["@2014", "@2014-01", "@2014-01-31", "@2014-01-31T10:00:00.123+10:00", "@T23:59"]),
    ) {
        for src in [
            format!("({a}) {op} ({b})"),
            format!("({a}).{f}"),
            format!("{date} + ({a})"),
            format!("{date} - ({b})"),
            format!("{date} {op} {date}"),
        ] {
            if let Ok(e) = Expression::parse(&src) {
                let _ = e.evaluate(&Value::Null, &Env::default());
            }
        }
    }

    #[test]
    fn random_expressions_never_panic_on_a_resource(src in "[a-zA-Z0-9 .()\\[\\]{}'$@%:+*/&|=~!<>,-]{0,40}") {
        let patient = serde_json::json!({
            "resourceType": "Patient", "id": "1", "name": [{"given": ["a", "b"], "family": "c"}],
            "birthDate": "2000-01-01", "_birthDate": {"extension": [{"url": "u", "valueString": "x"}]},
            "contained": [{"resourceType": "Patient", "id": "c1"}], "link": [{"other": {"reference": "#c1"}}]
        });
        if let Ok(e) = Expression::parse(&src) {
            let _ = e.evaluate(&patient, &Env::default());
        }
    }

    #[test]
    fn evaluation_never_panics(json in arb_json()) {
        for src in EXPRESSIONS {
            let e = Expression::parse(src);
            prop_assert!(e.is_ok(), "{src}");
            if let Ok(e) = e {
                let _ = e.evaluate(&json, &Env::default());
            }
        }
    }
}
