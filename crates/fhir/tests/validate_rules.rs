//! One or more negative (and matching positive) cases for each validation rule.

use medicus_fhir::{IssueType, ValidationIssue, validate};
use serde_json::{Value, json};

fn issues(resource: Value) -> Vec<ValidationIssue> {
    validate(&resource)
}

/// The (expression, code) pairs reported.
fn found(resource: Value) -> Vec<(String, IssueType)> {
    issues(resource)
        .into_iter()
        .map(|i| (i.expression, i.code))
        .collect()
}

fn assert_one(resource: Value, expression: &str, code: IssueType) {
    let all = issues(resource);
    assert!(
        all.iter()
            .any(|i| i.expression == expression && i.code == code),
        "expected {code:?} at {expression}, got {all:#?}"
    );
    assert_eq!(all.len(), 1, "expected exactly one issue, got {all:#?}");
}

fn assert_valid(resource: Value) {
    let all = issues(resource);
    assert!(all.is_empty(), "expected no issues, got {all:#?}");
}

#[test]
fn minimal_resources_are_valid() {
    assert_valid(json!({"resourceType": "Patient"}));
    assert_valid(
        json!({"resourceType": "Patient", "id": "p1", "active": true, "birthDate": "1980-02-29"}),
    );
    assert_valid(json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2023-01-01T10:00:00+01:00",
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
    }));
}

#[test]
fn resource_type_must_be_present_and_known() {
    assert_one(json!({"id": "x"}), "Resource", IssueType::Required);
    assert_one(
        json!({"resourceType": "Foo"}),
        "Resource",
        IssueType::Invalid,
    );
    assert_one(
        json!({"resourceType": "DomainResource"}),
        "Resource",
        IssueType::Invalid,
    );
    assert_one(
        json!({"resourceType": 1}),
        "Resource.resourceType",
        IssueType::Structure,
    );
    assert_one(json!([]), "Resource", IssueType::Structure);
    assert_one(json!("Patient"), "Resource", IssueType::Structure);
}

#[test]
fn unknown_elements() {
    assert_one(
        json!({"resourceType": "Patient", "foo": 1}),
        "Patient.foo",
        IssueType::Structure,
    );
    assert_one(
        json!({"resourceType": "Patient", "name": [{"family": "X", "nickname": "y"}]}),
        "Patient.name[0].nickname",
        IssueType::Structure,
    );
    assert_one(
        json!({"resourceType": "Patient", "contact": [{"name": {"text": "x"}, "foo": true}]}),
        "Patient.contact[0].foo",
        IssueType::Structure,
    );
}

#[test]
fn choice_elements() {
    let obs = |extra: Value| {
        let mut o =
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}});
        for (k, v) in extra.as_object().unwrap() {
            o[k] = v.clone();
        }
        o
    };
    assert_valid(obs(json!({"valueString": "x"})));
    assert_one(
        obs(json!({"valueFoo": "x"})),
        "Observation.valueFoo",
        IssueType::Structure,
    );
    // Attachment is not an allowed type of Observation.value[x].
    assert_one(
        obs(json!({"valueAttachment": {"url": "http://x"}})),
        "Observation.valueAttachment",
        IssueType::Structure,
    );
    assert_one(
        obs(json!({"value": "x"})),
        "Observation.value",
        IssueType::Structure,
    );
    assert_one(
        obs(json!({"valueString": "x", "valueBoolean": true})),
        "Observation.valueBoolean",
        IssueType::Invariant,
    );
    // The same variant with its `_` sibling is one variant.
    assert_valid(obs(
        json!({"valueString": "x", "_valueString": {"id": "a"}}),
    ));
    assert_one(
        obs(json!({"valueString": "x", "_valueBoolean": {"id": "a"}})),
        "Observation.valueBoolean",
        IssueType::Invariant,
    );
}

#[test]
fn primitive_extension_siblings() {
    let ext = json!({"url": "http://x", "valueCode": "unknown"});
    assert_valid(json!({"resourceType": "Patient", "_birthDate": {"extension": [ext]}}));
    assert_valid(
        json!({"resourceType": "Patient", "birthDate": "2000", "_birthDate": {"id": "b"}}),
    );
    assert_one(
        json!({"resourceType": "Patient", "_birthDate": "x"}),
        "Patient.birthDate",
        IssueType::Structure,
    );
    assert_one(
        json!({"resourceType": "Patient", "_birthDate": {"foo": 1}}),
        "Patient.birthDate.foo",
        IssueType::Structure,
    );
    assert_one(
        json!({"resourceType": "Patient", "_name": {"id": "x"}}),
        "Patient._name",
        IssueType::Structure,
    );
    assert_one(
        json!({"resourceType": "Patient", "_nope": {"id": "x"}}),
        "Patient._nope",
        IssueType::Structure,
    );
    // ids and the narrative div are plain strings without extensions.
    assert_one(
        json!({"resourceType": "Patient", "id": "a", "_id": {"id": "x"}}),
        "Patient._id",
        IssueType::Structure,
    );
    assert_one(
        json!({"resourceType": "Patient", "name": [{"id": "a", "_id": {"id": "x"}}]}),
        "Patient.name[0]._id",
        IssueType::Structure,
    );
    assert_one(
        json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div>x</div>", "_div": {"id": "x"}}}),
        "Patient.text._div",
        IssueType::Structure,
    );
    assert_valid(
        json!({"resourceType": "Patient", "text": {"status": "generated", "_status": {"id": "x"}, "div": "<div>x</div>"}}),
    );
    // Arrays: aligned, nulls on either side but not both.
    assert_valid(json!({"resourceType": "Patient", "name": [{
        "given": ["A", null], "_given": [null, {"extension": [ext]}]
    }]}));
    assert_one(
        json!({"resourceType": "Patient", "name": [{"given": ["A", null]}]}),
        "Patient.name[0].given[1]",
        IssueType::Structure,
    );
    assert_one(
        json!({"resourceType": "Patient", "name": [{"given": ["A", "B"], "_given": [null]}]}),
        "Patient.name[0].given",
        IssueType::Structure,
    );
    assert_eq!(
        found(
            json!({"resourceType": "Patient", "name": [{"given": ["A"], "_given": [{"id": "x"}, null]}]})
        ),
        vec![
            ("Patient.name[0].given".to_owned(), IssueType::Structure),
            ("Patient.name[0].given[1]".to_owned(), IssueType::Structure),
        ]
    );
    assert_one(
        json!({"resourceType": "Patient", "name": [{"_given": [null]}]}),
        "Patient.name[0].given[0]",
        IssueType::Structure,
    );
    assert_one(
        json!({"resourceType": "Patient", "name": [{"given": ["A"], "_given": {"id": "x"}}]}),
        "Patient.name[0].given",
        IssueType::Structure,
    );
}

#[test]
fn json_shapes() {
    assert_one(
        json!({"resourceType": "Patient", "name": {"family": "X"}}),
        "Patient.name",
        IssueType::Structure,
    );
    assert_one(
        json!({"resourceType": "Patient", "gender": ["male"]}),
        "Patient.gender",
        IssueType::Invariant,
    );
    assert_one(
        json!({"resourceType": "Patient", "name": [null]}),
        "Patient.name[0]",
        IssueType::Structure,
    );
    assert_one(
        json!({"resourceType": "Patient", "gender": null}),
        "Patient.gender",
        IssueType::Structure,
    );
    assert_one(
        json!({"resourceType": "Patient", "maritalStatus": "M"}),
        "Patient.maritalStatus",
        IssueType::Structure,
    );
    assert_one(
        json!({"resourceType": "Patient", "active": "true"}),
        "Patient.active",
        IssueType::Structure,
    );
    assert_one(
        json!({"resourceType": "Patient", "gender": 1}),
        "Patient.gender",
        IssueType::Structure,
    );
    assert_one(
        json!({"resourceType": "Patient", "multipleBirthInteger": 1.5}),
        "Patient.multipleBirthInteger",
        IssueType::Value,
    );
    assert_one(
        json!({"resourceType": "Patient", "multipleBirthInteger": 3_000_000_000_i64}),
        "Patient.multipleBirthInteger",
        IssueType::Value,
    );
    assert_one(
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
               "valueQuantity": {"value": "72"}}),
        "Observation.valueQuantity.value",
        IssueType::Structure,
    );
}

#[test]
fn empty_content() {
    assert_one(
        json!({"resourceType": "Patient", "name": []}),
        "Patient.name",
        IssueType::Invalid,
    );
    assert_one(
        json!({"resourceType": "Patient", "maritalStatus": {}}),
        "Patient.maritalStatus",
        IssueType::Invalid,
    );
    assert_one(
        json!({"resourceType": "Patient", "gender": ""}),
        "Patient.gender",
        IssueType::Invalid,
    );
    assert_one(
        json!({"resourceType": "Patient", "name": [{"family": ""}]}),
        "Patient.name[0].family",
        IssueType::Invalid,
    );
}

#[test]
fn cardinality() {
    assert_one(
        json!({"resourceType": "Observation", "code": {"text": "x"}}),
        "Observation.status",
        IssueType::Required,
    );
    assert_one(
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "component": [{"valueString": "x"}]}),
        "Observation.component[0].code",
        IssueType::Required,
    );
    // Required inside an absent optional parent is not required.
    assert_valid(json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}));
    // A primitive present only through its extension counts as present.
    assert_valid(
        json!({"resourceType": "Observation", "_status": {"extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}
    ]}, "code": {"text": "x"}}),
    );
    // Required choice elements.
    let request = |extra: Value| {
        let mut o = json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                           "subject": {"reference": "Patient/p"}});
        for (k, v) in extra.as_object().unwrap() {
            o[k] = v.clone();
        }
        o
    };
    assert_one(
        request(json!({})),
        "MedicationRequest.medication",
        IssueType::Required,
    );
    assert_valid(request(
        json!({"medicationReference": {"reference": "Medication/m"}}),
    ));
    assert_valid(request(json!({"medicationCodeableConcept": {"text": "m"}})));
}

#[test]
fn primitive_formats() {
    let p = |k: &str, v: Value| {
        let mut o = json!({"resourceType": "Patient"});
        o[k] = v;
        o
    };
    assert_one(p("id", json!("a_b")), "Patient.id", IssueType::Value);
    assert_one(
        p("id", json!("a".repeat(65))),
        "Patient.id",
        IssueType::Value,
    );
    assert_one(
        p("birthDate", json!("2023-02-30")),
        "Patient.birthDate",
        IssueType::Value,
    );
    assert_one(
        p("birthDate", json!("2023-02-28T10:00:00Z")),
        "Patient.birthDate",
        IssueType::Value,
    );
    assert_one(
        p("deceasedDateTime", json!("2023-02-28T10:00")),
        "Patient.deceasedDateTime",
        IssueType::Value,
    );
    assert_one(
        p("deceasedDateTime", json!("2023-02-28T10:00:00")),
        "Patient.deceasedDateTime",
        IssueType::Value,
    );
    assert_valid(p("deceasedDateTime", json!("2023-02-28T10:00:00.5-05:00")));
    assert_one(
        p("gender", json!(" male")),
        "Patient.gender",
        IssueType::Value,
    );
    assert_one(
        p("gender", json!("ma  le")),
        "Patient.gender",
        IssueType::Value,
    );
    assert_one(
        p("implicitRules", json!("http://x y")),
        "Patient.implicitRules",
        IssueType::Value,
    );
    assert_valid(p("meta", json!({"lastUpdated": "2023-01-01T00:00:00Z"})));
    assert_one(
        p("meta", json!({"lastUpdated": "2023-01-01"})),
        "Patient.meta.lastUpdated",
        IssueType::Value,
    );
    assert_one(
        p("meta", json!({"lastUpdated": "2023-01-01T00:00:00"})),
        "Patient.meta.lastUpdated",
        IssueType::Value,
    );
    assert_one(
        p("meta", json!({"versionId": "1 2"})),
        "Patient.meta.versionId",
        IssueType::Value,
    );
    assert_one(
        p("meta", json!({"profile": ["http://x y"]})),
        "Patient.meta.profile[0]",
        IssueType::Value,
    );
    assert_one(
        p("photo", json!([{"data": "not base64!"}])),
        "Patient.photo[0].data",
        IssueType::Value,
    );
    assert_valid(p(
        "photo",
        json!([{"data": "SGVsbG8=", "size": 5, "contentType": "text/plain"}]),
    ));
    assert_one(
        p("photo", json!([{"size": -1}])),
        "Patient.photo[0].size",
        IssueType::Value,
    );
    let ext = |value: Value| p("extension", json!([value]));
    assert_one(
        ext(json!({"url": "x", "valueOid": "1.2.3"})),
        "Patient.extension[0].valueOid",
        IssueType::Value,
    );
    assert_valid(ext(json!({"url": "x", "valueOid": "urn:oid:1.2.3"})));
    assert_one(
        ext(json!({"url": "x", "valueUuid": "urn:uuid:1"})),
        "Patient.extension[0].valueUuid",
        IssueType::Value,
    );
    assert_one(
        ext(json!({"url": "x", "valueInstant": "2020"})),
        "Patient.extension[0].valueInstant",
        IssueType::Value,
    );
    assert_one(
        ext(json!({"url": "x", "valueTime": "10:00"})),
        "Patient.extension[0].valueTime",
        IssueType::Value,
    );
    assert_one(
        ext(json!({"url": "x", "valueDecimal": "1"})),
        "Patient.extension[0].valueDecimal",
        IssueType::Structure,
    );
    assert_one(
        ext(json!({"url": "x", "valueCanonical": "a b"})),
        "Patient.extension[0].valueCanonical",
        IssueType::Value,
    );
    assert_one(
        ext(json!({"url": "x", "valueUrl": "a b"})),
        "Patient.extension[0].valueUrl",
        IssueType::Value,
    );
    assert_one(
        ext(json!({"url": "x", "valueUnsignedInt": -1})),
        "Patient.extension[0].valueUnsignedInt",
        IssueType::Value,
    );
    assert_one(
        ext(json!({"url": "x", "valuePositiveInt": 0})),
        "Patient.extension[0].valuePositiveInt",
        IssueType::Value,
    );
    assert_one(
        ext(json!({"url": "x", "valueBase64Binary": "abc"})),
        "Patient.extension[0].valueBase64Binary",
        IssueType::Value,
    );
    assert_one(
        ext(json!({"url": "x", "valueMarkdown": ""})),
        "Patient.extension[0].valueMarkdown",
        IssueType::Invalid,
    );
    assert_one(
        ext(json!({"url": "x", "valueId": "a b"})),
        "Patient.extension[0].valueId",
        IssueType::Value,
    );
    assert_one(
        ext(json!({"url": "a b", "valueId": "a"})),
        "Patient.extension[0].url",
        IssueType::Value,
    );
    assert_one(
        p("text", json!({"status": "generated", "div": ""})),
        "Patient.text.div",
        IssueType::Invalid,
    );
}

#[test]
fn primitive_types_of_other_resources() {
    assert_one(
        json!({"resourceType": "Basic", "code": {"text": "x"}, "created": "2023-13-01"}),
        "Basic.created",
        IssueType::Value,
    );
    // instant, time, oid, uuid, decimal, positiveInt, unsignedInt
    let ms = json!({"resourceType": "MessageHeader", "eventCoding": {"code": "x"}, "source": {"endpoint": "http://x"}});
    assert_valid(ms);
    assert_one(
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "issued": "2023-01-01T00:00:00"}),
        "Observation.issued",
        IssueType::Value,
    );
    assert_one(
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueTime": "25:00:00"}),
        "Observation.valueTime",
        IssueType::Value,
    );
    assert_one(
        json!({"resourceType": "NamingSystem", "name": "n", "status": "active", "kind": "codesystem", "date": "2023",
               "uniqueId": [{"type": "uuid", "value": "x"}], "url": "x"}),
        "NamingSystem.url",
        IssueType::Structure,
    );
    assert_one(
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": "1"}}),
        "Observation.valueQuantity.value",
        IssueType::Structure,
    );
    assert_one(
        json!({"resourceType": "Patient", "contact": [{"period": {"start": "2020-01-01T00:00:00Z", "end": "x"}}]}),
        "Patient.contact[0].period.end",
        IssueType::Value,
    );
}

#[test]
fn nested_resources() {
    assert_valid(
        json!({"resourceType": "Patient", "contained": [{"resourceType": "Organization", "id": "o1", "name": "O"}],
                        "managingOrganization": {"reference": "#o1"}}),
    );
    assert_one(
        json!({"resourceType": "Patient", "contained": [{"resourceType": "Organization", "foo": 1}]}),
        "Patient.contained[0].foo",
        IssueType::Structure,
    );
    assert_one(
        json!({"resourceType": "Patient", "contained": [{"id": "x"}]}),
        "Patient.contained[0]",
        IssueType::Required,
    );
    assert_one(
        json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Patient", "name": [{"given": [1]}]}}
        ]}),
        "Bundle.entry[0].resource.name[0].given[0]",
        IssueType::Structure,
    );
    assert_eq!(
        found(json!({"resourceType": "Parameters", "parameter": [
            {"name": "p", "resource": {"resourceType": "Patient", "gender": 1}},
            {"name": "q", "part": [{"name": "r", "valueInteger": "1"}]}
        ]})),
        vec![
            (
                "Parameters.parameter[0].resource.gender".to_owned(),
                IssueType::Structure
            ),
            (
                "Parameters.parameter[1].part[0].valueInteger".to_owned(),
                IssueType::Structure
            ),
        ]
    );
}

#[test]
fn references() {
    let r = |reference: &str| {
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                     "subject": {"reference": reference}})
    };
    for ok in [
        "Patient/1",
        "Patient/1/_history/2",
        "http://x.org/fhir/Patient/1",
        "urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
        "urn:oid:1.2.3",
        "#c1",
        "Patient?identifier=x|1",
    ] {
        assert_valid(r(ok));
    }
    for bad in [
        "Foo/1",
        "Patient/a_b",
        "Patient",
        "urn:uuid:1",
        "Patient/1/_history",
        "#a b",
    ] {
        assert_one(r(bad), "Observation.subject.reference", IssueType::Value);
    }
}

#[test]
fn extensions() {
    let p = |ext: Value| json!({"resourceType": "Patient", "extension": [ext]});
    assert_valid(p(json!({"url": "http://x", "valueString": "a"})));
    assert_valid(p(
        json!({"url": "http://x", "extension": [{"url": "a", "valueBoolean": true}]}),
    ));
    assert_one(
        p(json!({"valueString": "a"})),
        "Patient.extension[0].url",
        IssueType::Required,
    );
    assert_one(
        p(json!({"url": "http://x"})),
        "Patient.extension[0]",
        IssueType::Invariant,
    );
    assert_one(
        p(
            json!({"url": "http://x", "valueString": "a", "extension": [{"url": "a", "valueBoolean": true}]}),
        ),
        "Patient.extension[0]",
        IssueType::Invariant,
    );
    assert_one(
        json!({"resourceType": "Patient", "modifierExtension": [{"url": "http://x"}]}),
        "Patient.modifierExtension[0]",
        IssueType::Invariant,
    );
}

#[test]
fn reports_every_error() {
    let all = found(json!({
        "resourceType": "Patient",
        "id": "bad id",
        "foo": 1,
        "name": [{"given": ["A", 2]}],
        "birthDate": "2023-02-30"
    }));
    assert_eq!(
        all,
        vec![
            ("Patient.id".to_owned(), IssueType::Value),
            ("Patient.foo".to_owned(), IssueType::Structure),
            ("Patient.name[0].given[1]".to_owned(), IssueType::Structure),
            ("Patient.birthDate".to_owned(), IssueType::Value),
        ]
    );
}

#[test]
fn deep_nesting_does_not_overflow() {
    let mut ext = json!({"url": "x", "valueString": "v"});
    for _ in 0..300 {
        ext = json!({"url": "x", "extension": [ext]});
    }
    let all = issues(json!({"resourceType": "Patient", "extension": [ext]}));
    assert!(all.iter().any(|i| i.message.contains("deep")), "{all:?}");
}
