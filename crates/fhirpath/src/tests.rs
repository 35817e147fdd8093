//! Evaluation tests over small inline resources, one block per feature family.

use serde_json::{Value, json};

use crate::{Env, EvalError, Expression, Item, Model};

fn eval_with<'a>(
    src: &str,
    root: &'a Value,
    model: Option<&dyn Model>,
) -> Result<Vec<Item<'a>>, EvalError> {
    let e = Expression::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    e.evaluate(root, &Env { model })
}

fn eval<'a>(src: &str, root: &'a Value) -> Vec<Item<'a>> {
    eval_with(src, root, None).unwrap_or_else(|e| panic!("{src}: {e}"))
}

/// Results rendered as text (node values as their JSON scalar text).
fn texts(src: &str, root: &Value) -> Vec<String> {
    eval(src, root)
        .iter()
        .map(|i| match i {
            Item::Node(n) => match n.value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
            Item::Boolean(b) => b.to_string(),
            Item::Integer(i) => i.to_string(),
            Item::Decimal(s)
            | Item::String(s)
            | Item::Date(s)
            | Item::DateTime(s)
            | Item::Time(s) => s.clone(),
            Item::Quantity { value, unit } => format!("{value} '{unit}'"),
        })
        .collect()
}

fn truth(src: &str, root: &Value) -> Option<bool> {
    match eval(src, root).as_slice() {
        [] => None,
        [Item::Boolean(b)] => Some(*b),
        other => panic!("{src}: not a boolean: {other:?}"),
    }
}

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "active": true,
        "birthDate": "1974-12-25",
        "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1974-12-25T14:35:45-05:00"}]},
        "name": [
            {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
            {"use": "usual", "given": ["Jim"]}
        ],
        "telecom": [{"system": "phone", "value": "555", "use": "home"}],
        "generalPractitioner": [{"reference": "Practitioner/7"}],
        "managingOrganization": {"reference": "http://example.org/fhir/Organization/1/_history/2"},
        "contained": [{"resourceType": "Practitioner", "id": "pr1"}],
        "link": [{"other": {"reference": "#pr1"}}]
    })
}

fn observation() -> Value {
    // Parsed from text (not `json!`) so the decimal keeps its source precision.
    let text = r#"{
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": "Patient/123"},
        "effectiveDateTime": "2016-03-28T09:30:10+01:00",
        "valueQuantity": {"value": 185.50, "unit": "lbs", "system": "http://unitsofmeasure.org", "code": "[lb_av]"},
        "component": [
            {"code": {"text": "a"}, "valueString": "x"},
            {"code": {"text": "b"}, "valueCodeableConcept": {"text": "y"}}
        ]
    }"#;
    serde_json::from_str(text).unwrap_or_default()
}

#[test]
fn navigation_and_root_type() {
    let p = patient();
    assert_eq!(texts("Patient.name.given", &p), ["Peter", "James", "Jim"]);
    assert_eq!(texts("name.given", &p), ["Peter", "James", "Jim"]);
    assert_eq!(texts("Resource.id", &p), ["p1"]);
    assert_eq!(texts("DomainResource.id", &p), ["p1"]);
    assert!(texts("Observation.status", &p).is_empty());
    assert_eq!(texts("name[1].given", &p), ["Jim"]);
    assert_eq!(texts("name.given[2]", &p), ["Jim"]);
    assert_eq!(texts("`name`.`given`.first()", &p), ["Peter"]);
    assert_eq!(texts("contained.id", &p), ["pr1"]);
    let contained = eval("contained", &p);
    assert!(matches!(&contained[0], Item::Node(n) if n.type_name == Some("Practitioner")));
}

#[test]
fn choice_elements_are_typed_by_suffix() {
    let o = observation();
    let v = eval("Observation.value", &o);
    assert!(matches!(v.as_slice(), [Item::Node(n)] if n.type_name == Some("Quantity")));
    let e = eval("effective", &o);
    assert!(matches!(e.as_slice(), [Item::Node(n)] if n.type_name == Some("dateTime")));
    assert_eq!(truth("Observation.value is Quantity", &o), Some(true));
    assert_eq!(truth("Observation.value.is(FHIR.Quantity)", &o), Some(true));
    assert_eq!(texts("(Observation.value as Quantity).unit", &o), ["lbs"]);
    assert_eq!(
        texts("Observation.value.as(Quantity).value", &o),
        ["185.50"]
    );
    assert_eq!(texts("component.value.ofType(string)", &o), ["x"]);
    assert_eq!(
        texts("component.value.ofType(CodeableConcept).text", &o),
        ["y"]
    );
    assert_eq!(truth("Observation.value > 180 '[lb_av]'", &o), Some(true));
    assert_eq!(truth("effective > @2016-01-01", &o), Some(true));
    assert_eq!(truth("(effective as dateTime) < @2017", &o), Some(true));
}

#[test]
fn resolve_placeholders() {
    let o = observation();
    assert_eq!(truth("subject.resolve() is Patient", &o), Some(true));
    assert_eq!(eval("subject.where(resolve() is Patient)", &o).len(), 1);
    assert!(eval("subject.where(resolve() is Group)", &o).is_empty());
    let p = patient();
    assert_eq!(
        truth("managingOrganization.resolve() is Organization", &p),
        Some(true)
    );
    assert_eq!(
        truth("generalPractitioner.resolve() is Practitioner", &p),
        Some(true)
    );
    assert_eq!(texts("link.other.resolve().id", &p), ["pr1"]);
    assert_eq!(truth("'Patient/1'.resolve() is Patient", &p), Some(true));
}

#[test]
fn primitive_extensions() {
    let p = patient();
    let url = "'http://hl7.org/fhir/StructureDefinition/patient-birthTime'";
    assert_eq!(
        texts(&format!("Patient.birthDate.extension({url}).value"), &p),
        ["1974-12-25T14:35:45-05:00"]
    );
    assert_eq!(
        texts(
            &format!("birthDate.extension.where(url = {url}).valueDateTime"),
            &p
        ),
        ["1974-12-25T14:35:45-05:00"]
    );
    assert_eq!(truth("birthDate.hasValue()", &p), Some(true));
    let only_ext = json!({"resourceType": "Patient", "_gender": {"extension": [{"url": "u", "valueCode": "x"}]}});
    assert_eq!(truth("gender.hasValue()", &only_ext), Some(false));
    assert_eq!(texts("gender.extension('u').value", &only_ext), ["x"]);
}

#[test]
fn literals_and_arithmetic() {
    let v = Value::Null;
    assert_eq!(texts("1 + 2 * 3", &v), ["7"]);
    assert_eq!(texts("(1 + 2) * 3", &v), ["9"]);
    assert_eq!(texts("7 div 2", &v), ["3"]);
    assert_eq!(texts("7 mod 2", &v), ["1"]);
    assert_eq!(texts("1 / 4", &v), ["0.25"]);
    assert_eq!(texts("1.10 + 2.205", &v), ["3.305"]);
    assert_eq!(texts("-5.5.abs()", &v), ["-5.5"]);
    assert_eq!(texts("(-5.5).abs()", &v), ["5.5"]);
    assert_eq!(texts("'a' + 'b' & {}", &v), ["ab"]);
    assert!(eval("9223372036854775807 + 1", &v).is_empty());
    assert!(eval("1 / 0", &v).is_empty());
    assert_eq!(texts("@2014-01-31 + 1 month", &v), ["2014-02-28"]);
    assert_eq!(texts("@T10:00 + 3 hours", &v), ["13:00"]);
    assert_eq!(texts("4 'mg'", &v), ["4 'mg'"]);
    assert_eq!(texts("2 'cm' * 3", &v), ["6 'cm'"]);
    assert_eq!(texts("'\\u0041\\n'.length()", &v), ["2"]);
    assert_eq!(texts("'\\uD83E\\uDDB6'", &v), ["\u{1F9B6}"]);
    assert!(Expression::parse("'\\uD83E'").is_err());
    assert!(Expression::parse("'\\u12G4'").is_err());
    assert_eq!(texts("%ucum", &v), ["http://unitsofmeasure.org"]);
    assert_eq!(texts("%`vs-x`", &v), ["http://hl7.org/fhir/ValueSet/x"]);
}

#[test]
fn three_valued_logic() {
    let v = Value::Null;
    let cases = [
        ("true and {}", None),
        ("false and {}", Some(false)),
        ("true or {}", Some(true)),
        ("false or {}", None),
        ("true xor false", Some(true)),
        ("{} xor true", None),
        ("false implies {}", Some(true)),
        ("{} implies true", Some(true)),
        ("true implies {}", None),
        ("{}.not()", None),
    ];
    for (src, want) in cases {
        assert_eq!(truth(src, &v), want, "{src}");
    }
}

#[test]
fn equality_equivalence_and_comparison() {
    let v = Value::Null;
    assert_eq!(truth("1 = 1.0", &v), Some(true));
    assert_eq!(truth("'a' = 'A'", &v), Some(false));
    assert_eq!(truth("'a b' ~ 'A B'", &v), Some(true));
    assert_eq!(truth("1.01 ~ 1.0", &v), Some(true));
    assert_eq!(truth("{} = 1", &v), None);
    assert_eq!(truth("{} ~ {}", &v), Some(true));
    assert_eq!(truth("(1 | 2) = (1 | 2)", &v), Some(true));
    assert_eq!(truth("(1 | 2) ~ (2 | 1)", &v), Some(true));
    assert_eq!(truth("@2012 = @2012-01", &v), None);
    assert_eq!(truth("@2012 < @2013-01", &v), Some(true));
    assert_eq!(
        truth("@2012-04-15T15:00:00Z = @2012-04-15T10:00:00-05:00", &v),
        Some(true)
    );
    assert_eq!(truth("@T10:00 < @T11:00:00", &v), Some(true));
    assert_eq!(truth("4 'g' = 4000 'mg'", &v), Some(true));
    assert_eq!(truth("7 days = 1 week", &v), Some(true));
    assert_eq!(truth("1 year = 1 'a'", &v), None);
    assert_eq!(truth("1 year ~ 1 'a'", &v), Some(true));
    assert_eq!(truth("1 'mg' < 1 'g'", &v), Some(true));
    assert_eq!(truth("2 in (1 | 2)", &v), Some(true));
    assert_eq!(truth("(1 | 2) contains 3", &v), Some(false));
    assert!(eval_with("1 < 'a'", &v, None).is_err());
    assert!(eval_with("(1 | 2) < 3", &v, None).is_err());
}

#[test]
fn collection_functions() {
    let p = patient();
    assert_eq!(texts("name.given.count()", &p), ["3"]);
    assert_eq!(texts("name.where(use = 'usual').given", &p), ["Jim"]);
    assert_eq!(texts("name.select(given.first())", &p), ["Peter", "Jim"]);
    assert_eq!(texts("name.given.where($index > 0)", &p), ["James", "Jim"]);
    assert_eq!(truth("name.all(given.exists())", &p), Some(true));
    assert_eq!(truth("name.exists(use = 'maiden')", &p), Some(false));
    assert_eq!(texts("(1 | 2 | 2 | 3).count()", &p), ["3"]);
    assert_eq!(texts("(1 | 2).combine(2).count()", &p), ["3"]);
    assert_eq!(texts("(1 | 2 | 3).intersect(2 | 3 | 4)", &p), ["2", "3"]);
    assert_eq!(texts("(1 | 2 | 3).exclude(2)", &p), ["1", "3"]);
    assert_eq!(texts("(1 | 2 | 3).skip(1).take(1)", &p), ["2"]);
    assert_eq!(texts("(1 | 2 | 3).tail().last()", &p), ["3"]);
    assert_eq!(truth("(1 | 2).subsetOf(1 | 2 | 3)", &p), Some(true));
    assert_eq!(truth("(1 | 2 | 3).supersetOf(2)", &p), Some(true));
    assert_eq!(truth("(true | false).anyTrue()", &p), Some(true));
    assert_eq!(truth("(true | false).allTrue()", &p), Some(false));
    assert_eq!(truth("(1 | 1).isDistinct()", &p), Some(true));
    assert_eq!(texts("iif(active, 'y', 'n')", &p), ["y"]);
    assert_eq!(texts("(1 | 2 | 3).aggregate($this + $total, 0)", &p), ["6"]);
    assert!(eval_with("name.single()", &p, None).is_err());
    assert_eq!(texts("descendants().where($this = 'Jim')", &p), ["Jim"]);
    assert!(eval("children().count()", &p).len() == 1);
    assert_eq!(
        texts("Patient.name.repeat(given)", &p),
        ["Peter", "James", "Jim"]
    );
}

#[test]
fn string_and_conversion_functions() {
    let v = Value::Null;
    assert_eq!(texts("'abcdef'.substring(2, 3)", &v), ["cde"]);
    assert_eq!(texts("'abc'.indexOf('c')", &v), ["2"]);
    assert_eq!(
        truth(
            "'abc'.startsWith('ab') and 'abc'.endsWith('bc') and 'abc'.contains('b')",
            &v
        ),
        Some(true)
    );
    assert_eq!(texts("'AbC'.upper() & 'AbC'.lower()", &v), ["ABCabc"]);
    assert_eq!(texts("'a,b'.split(',')", &v), ["a", "b"]);
    assert_eq!(texts("('a' | 'b').join('-')", &v), ["a-b"]);
    assert_eq!(texts("' x '.trim()", &v), ["x"]);
    assert_eq!(texts("'abc'.replace('b', 'x')", &v), ["axc"]);
    assert_eq!(truth("'2019-01-01'.matches('^\\\\d{4}-')", &v), Some(true));
    assert_eq!(texts("'abc'.replaceMatches('[ac]', 'x')", &v), ["xbx"]);
    assert_eq!(texts("'ab'.toChars()", &v), ["a", "b"]);
    assert_eq!(texts("'12'.toInteger() + 1", &v), ["13"]);
    assert_eq!(texts("'1.50'.toDecimal()", &v), ["1.50"]);
    assert_eq!(truth("'yes'.toBoolean()", &v), Some(true));
    assert_eq!(truth("'x'.convertsToInteger()", &v), Some(false));
    assert_eq!(texts("'2019-03-04T10:00:00Z'.toDate()", &v), ["2019-03-04"]);
    assert_eq!(texts("'5 \\'mg\\''.toQuantity()", &v), ["5 'mg'"]);
    assert_eq!(texts("1.5.toString()", &v), ["1.5"]);
    assert_eq!(texts("2.5.round()", &v), ["3"]);
    assert_eq!(texts("2.power(10)", &v), ["1024"]);
    assert_eq!(texts("16.sqrt()", &v), ["4"]);
    assert_eq!(
        texts("1.9.floor() + 1.1.ceiling() + (-1.9).truncate()", &v),
        ["2"]
    );
    assert!(eval_with("('a' | 'b').upper()", &v, None).is_err());
}

#[test]
fn type_operators_on_system_values() {
    let v = Value::Null;
    assert_eq!(truth("1 is Integer", &v), Some(true));
    assert_eq!(truth("1 is System.Integer", &v), Some(true));
    assert_eq!(truth("1.0 is Decimal", &v), Some(true));
    assert_eq!(truth("'a' is String", &v), Some(true));
    assert_eq!(truth("@2012 is Date", &v), Some(true));
    assert_eq!(truth("1 'mg' is Quantity", &v), Some(true));
    assert_eq!(texts("(1 | 'a').ofType(String)", &v), ["a"]);
}

/// A model that knows just enough of Patient to show model-driven typing.
struct TinyModel;

impl Model for TinyModel {
    fn element_types(&self, parent: &str, element: &str) -> Option<&'static [&'static str]> {
        match (parent, element) {
            ("Patient", "gender") => Some(&["code"]),
            ("Patient", "name") => Some(&["HumanName"]),
            ("Patient", "deceased") => Some(&["boolean", "dateTime"]),
            ("HumanName", "given") => Some(&["string"]),
            _ => None,
        }
    }
    fn is_subtype_of(&self, ty: &str, base: &str) -> bool {
        ty == base || (ty == "code" && base == "string")
    }
    fn type_name(&self, name: &str) -> Option<&'static str> {
        crate::model::builtin_type_name(name)
    }
}

#[test]
fn model_drives_types() {
    let p = json!({"resourceType": "Patient", "gender": "male", "deceasedDateTime": "2020-01-01",
                   "name": [{"given": ["A"]}]});
    let m: &dyn Model = &TinyModel;
    let r = eval_with("Patient.gender.is(code)", &p, Some(m)).unwrap_or_default();
    assert_eq!(r, vec![Item::Boolean(true)]);
    let r = eval_with("Patient.name.ofType(HumanName).given", &p, Some(m)).unwrap_or_default();
    assert_eq!(r.len(), 1);
    let r = eval_with("Patient.deceased", &p, Some(m)).unwrap_or_default();
    assert!(matches!(r.as_slice(), [Item::Node(n)] if n.type_name == Some("dateTime")));
}

#[test]
fn parse_errors() {
    for bad in [
        "",
        "1 +",
        "(1",
        "a.",
        "'x",
        "@2020-13",
        "foo(",
        "unknownFn()",
        "where()",
        "1 2",
        "%",
        "$foo",
        "a[1",
    ] {
        assert!(Expression::parse(bad).is_err(), "{bad:?} should not parse");
    }
    let deep = "(".repeat(5000) + "1" + &")".repeat(5000);
    assert!(Expression::parse(&deep).is_err());
    let long_chain = vec!["1"; 5000].join(" + ");
    assert!(Expression::parse(&long_chain).is_err());
    let long_path = vec!["a"; 5000].join(".");
    assert!(Expression::parse(&long_path).is_err());
    let unary = "-".repeat(5000) + "1";
    assert!(Expression::parse(&unary).is_err());
}

#[test]
fn precedence() {
    let v = Value::Null;
    assert_eq!(truth("1 + 2 = 3 and 2 * 2 = 4", &v), Some(true));
    assert_eq!(truth("1 | 2 = 1 | 2", &v), Some(true));
    assert_eq!(truth("true or false and false", &v), Some(true));
    assert_eq!(truth("false implies false or true", &v), Some(true));
    assert_eq!(texts("-2 + 3", &v), ["1"]);
    assert_eq!(truth("2 + 2 is Integer", &v), Some(true));
}

#[test]
fn canonical_printing_round_trips() {
    for src in [
        "Patient.name.where(use = 'official' and given.exists()).given.first()",
        "Observation.value.as(Quantity) > 5 'mg' implies -(1.5) < 2",
        "(a | b).ofType(FHIR.Quantity)[0] is System.String",
        "%resource.x & %`vs-y` ~ 'a\\'b\\n' xor $this.iif($index, $total)",
        "@2015T = @2015-01-01T10:00:00Z and @T10:00 != 3 days",
    ] {
        let e = Expression::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let printed = e.to_canonical_string();
        let again = Expression::parse(&printed).unwrap_or_else(|e| panic!("{printed}: {e}"));
        assert_eq!(again.to_canonical_string(), printed);
        assert_eq!(again.ast, e.ast, "{src}");
    }
}

#[test]
fn compiled_expressions_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Expression>();
    assert_send_sync::<Item<'static>>();
}

#[test]
fn deepest_accepted_expressions_evaluate_without_overflow() {
    let p = patient();
    // Close to the depth limit, with the most stack-hungry shapes: nested lambdas and chains.
    let mut nested = String::from("name");
    for _ in 0..60 {
        nested = format!("name.where({nested}.exists())");
    }
    let e = Expression::parse(&nested).unwrap_or_else(|e| panic!("{e}"));
    assert!(e.evaluate(&p, &Env::default()).is_ok());
    let chain = vec!["1"; 120].join(" + ");
    assert_eq!(texts(&chain, &p), ["120"]);
    let iifs = (0..60).fold(String::from("1"), |acc, _| format!("iif(true, {acc}, 0)"));
    assert_eq!(texts(&iifs, &p), ["1"]);
}

#[test]
fn equivalence_details() {
    let v = Value::Null;
    assert_eq!(truth("'a\tb' ~ 'A B'", &v), Some(true));
    assert_eq!(truth("'a  b' ~ 'a b'", &v), Some(false));
    assert_eq!(truth("' ab' ~ 'ab'", &v), Some(false));
    assert_eq!(truth("1.10 ~ 1.1", &v), Some(true));
    assert_eq!(truth("1.1 ~ 1.0", &v), Some(true));
    assert_eq!(truth("1.12 ~ 1.13", &v), Some(false));
    assert_eq!(truth("9 = 9 '1'", &v), Some(true));
    assert_eq!(truth("2 '1' > 1", &v), Some(true));
    assert_eq!(truth("2 'kg' > 1", &v), None);
}

#[test]
fn value_less_primitives() {
    let p = json!({"resourceType": "Patient", "name": [{"given": ["A", null], "_given": [null, {"id": "g2"}]}]});
    assert_eq!(texts("name.given.count()", &p), ["2"]);
    assert_eq!(texts("name.given.join(',')", &p), ["A"]);
    assert_eq!(
        texts("name.given.select($this & '|' & id)", &p),
        ["A|", "|g2"]
    );
    assert_eq!(truth("name.given[1] = name.given[1]", &p), Some(true));
    assert_eq!(truth("name.given[0] = name.given[1]", &p), Some(false));
    assert!(eval("name.given[1].abs()", &p).is_empty());
    assert!(eval("{}.join(',')", &p).is_empty());
}

#[test]
fn newer_string_and_date_functions() {
    let v = Value::Null;
    assert_eq!(truth("'Hello'.matches('hello', 'i')", &v), Some(true));
    assert_eq!(truth("'Hello'.matches('hello')", &v), Some(false));
    assert_eq!(truth("'abc'.matchesFull('b')", &v), Some(false));
    assert_eq!(truth("'abc'.matchesFull('a.c')", &v), Some(true));
    assert_eq!(texts("'abcabc'.lastIndexOf('b')", &v), ["4"]);
    assert_eq!(texts("'abc'.replaceMatches('', 'x')", &v), ["abc"]);
    assert_eq!(texts("(3 | 1 | 2).sort()", &v), ["1", "2", "3"]);
    assert_eq!(texts("(3 | 1 | 2).sort(-$this)", &v), ["3", "2", "1"]);
    assert_eq!(
        texts("'test'.encode('base64').decode('base64')", &v),
        ["test"]
    );
    assert!(eval_with("'abc'.decode('hex')", &v, None).is_err());
    assert_eq!(
        texts("@2014-01-05T10:30:00.123+10:00.yearOf()", &v),
        ["2014"]
    );
    assert_eq!(
        texts("@2014-01-05T10:30:00.123+10:00.millisecondOf()", &v),
        ["123"]
    );
    assert_eq!(
        texts("@2014-01-05T10:30:00.123-07:30.timezoneOffsetOf()", &v),
        ["-7.5"]
    );
    assert!(eval("@2014-01.dayOf()", &v).is_empty());
    assert_eq!(texts("@T10:30.hourOf()", &v), ["10"]);
    assert_eq!(texts("1.587.lowBoundary()", &v), ["1.58650000"]);
    assert_eq!(texts("@2014.highBoundary(6)", &v), ["2014-12"]);
    assert_eq!(texts("1.58700.precision()", &v), ["5"]);
    assert_eq!(texts("1 'm'.type().name", &v), ["Quantity"]);
    assert_eq!(texts("(2.5 'kg').round().value", &v), ["3"]);
    assert_eq!(texts("(2 'cm' * 3 'm').unit", &v), ["m2"]);
}

#[test]
fn aggregates_and_lenient_criteria() {
    let p = patient();
    assert_eq!(truth("Patient.name.exists(given)", &p), Some(true));
    assert_eq!(texts("Patient.name.where(given).count()", &p), ["2"]);
    let v = Value::Null;
    assert_eq!(texts("(1 | 2 | 3).sum()", &v), ["6"]);
    assert_eq!(texts("(0.1 | 0.2).sum()", &v), ["0.3"]);
    assert_eq!(texts("(3 | 1 | 2).min()", &v), ["1"]);
    assert_eq!(texts("(3 | 1 | 2).max()", &v), ["3"]);
    assert_eq!(texts("(1 | 2).avg()", &v), ["1.5"]);
    assert_eq!(
        truth("(1 'cm' | 3 'cm' | 1 'm').sum() = 104 'cm'", &v),
        Some(true)
    );
    assert_eq!(truth("1 year = 12 months", &v), Some(true));
    assert_eq!(
        texts("@2012-01-01T12:30:00-07:00.dateOf()", &v),
        ["2012-01-01"]
    );
    assert_eq!(
        texts("@2012-01-01T12:30:00-07:00.timeOf()", &v),
        ["12:30:00"]
    );
    let plain = json!({"a": [1, "x", true, 1.5]});
    assert_eq!(texts("a.ofType(Integer)", &plain), ["1"]);
    assert_eq!(texts("a.ofType(String)", &plain), ["x"]);
}

#[test]
fn evaluation_in_a_context_with_variables() {
    let p = patient();
    let e = Expression::parse(
        "given.first() & ' ' & %greeting & ' ' & %resource.id & ' ' & %context.use",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let names = eval("name", &p);
    let vars = [("greeting", vec![Item::String("hi".into())])];
    let r = e
        .evaluate_in(&p, names[1].clone(), &vars, &Env::default())
        .unwrap_or_default();
    assert_eq!(r, vec![Item::String("Jim hi p1 usual".into())]);
    assert!(Expression::parse("%missing").is_ok_and(|e| e.evaluate(&p, &Env::default()).is_err()));
}

#[test]
fn sql_on_fhir_keys() {
    let p = patient();
    assert_eq!(texts("getResourceKey()", &p), ["p1"]);
    assert_eq!(texts("generalPractitioner.getReferenceKey()", &p), ["7"]);
    assert_eq!(
        texts("generalPractitioner.getReferenceKey(Practitioner)", &p),
        ["7"]
    );
    assert!(eval("generalPractitioner.getReferenceKey(Patient)", &p).is_empty());
    assert_eq!(
        texts("managingOrganization.getReferenceKey(Organization)", &p),
        ["1"]
    );
}

#[test]
fn static_check_against_a_model() {
    let m: &dyn Model = &TinyModel;
    let check = |src: &str| {
        Expression::parse(src)
            .map_err(|e| e.to_string())?
            .check("Patient", m)
            .map_err(|e| e.to_string())
    };
    assert!(check("Patient.name.given").is_ok());
    assert!(check("name.where(given = 'x').given.first()").is_ok());
    assert!(check("Patient.deceased.is(boolean)").is_ok());
    assert!(check("Patient.gender.extension('x')").is_ok());
    assert!(check("Patient.name.given1").is_err());
    assert!(check("Patient.deceasedBoolean").is_err());
    assert!(check("Encounter.status").is_err());
    assert!(check("Patient.name.select(nope)").is_err());
    assert!(check("(Patient.name as HumanName).given").is_ok());
    // Unknown context types are not checked.
    assert!(Expression::parse("x.y").is_ok_and(|e| e.check("Nope", m).is_ok()));
}
