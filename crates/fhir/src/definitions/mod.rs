//! The R4 type table, built once from the embedded `r4-types.json`.

pub(crate) mod raw;
mod types;

pub(crate) use types::{ElementDef, ElementRef, Primitive, TypeDef, TypeId, TypeKind, Variant};

use crate::error::DefinitionsError;
use crate::fast_hash::FastMap;
use raw::{RawKind, TypesFile};

/// Every type of R4 plus the FHIRPath system types of primitive values.
#[derive(Debug)]
pub(crate) struct TypeTable {
    pub(crate) fhir_version: &'static str,
    types: Vec<TypeDef>,
    by_name: FastMap<&'static str, TypeId>,
    /// Concrete resource type names, sorted.
    resource_types: Vec<&'static str>,
    /// Types the validator treats specially.
    pub(crate) element_type: TypeId,
    pub(crate) extension_type: TypeId,
    pub(crate) reference_type: TypeId,
    pub(crate) resource_type: TypeId,
}

impl TypeTable {
    pub(crate) fn get(&self, id: TypeId) -> &TypeDef {
        &self.types[usize::from(id.0)]
    }

    pub(crate) fn id(&self, name: &str) -> Option<TypeId> {
        self.by_name.get(name).copied()
    }

    #[cfg(test)]
    pub(crate) fn by_name(&self, name: &str) -> Option<&TypeDef> {
        self.id(name).map(|id| self.get(id))
    }

    pub(crate) fn element(&self, r: ElementRef) -> &ElementDef {
        &self.get(r.owner).elements[usize::from(r.index)]
    }

    /// The element a JSON key (or FHIRPath name) denotes on a type, inherited elements included.
    pub(crate) fn lookup(&self, ty: TypeId, key: &str) -> Option<ElementRef> {
        self.get(ty).keys.get(key).copied()
    }

    pub(crate) fn resource_types(&self) -> &[&'static str] {
        &self.resource_types
    }

    /// A concrete (instantiable) resource type.
    pub(crate) fn concrete_resource(&self, name: &str) -> Option<TypeId> {
        let id = self.id(name)?;
        let def = self.get(id);
        (def.kind == TypeKind::Resource && !def.is_abstract).then_some(id)
    }

    pub(crate) fn is_subtype(&self, ty: TypeId, base: TypeId) -> bool {
        let mut cur = Some(ty);
        // The chain is at most five deep (code -> string -> Element); bound it anyway.
        for _ in 0..16 {
            match cur {
                Some(t) if t == base => return true,
                Some(t) => cur = self.get(t).base,
                None => return false,
            }
        }
        false
    }

    pub(crate) fn load() -> Result<Self, DefinitionsError> {
        let file: TypesFile<'static> =
            serde_json::from_str(raw::TYPES_JSON).map_err(|source| DefinitionsError::Json {
                file: "r4-types.json",
                source,
            })?;
        build(file)
    }
}

fn leak<T>(v: Vec<T>) -> &'static [T] {
    Box::leak(v.into_boxed_slice())
}

fn leak_str(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// `value` + `Quantity` -> `valueQuantity`; `value` + `dateTime` -> `valueDateTime`.
fn choice_key(name: &str, ty: &str) -> String {
    let mut key = String::with_capacity(name.len() + ty.len());
    key.push_str(name);
    let mut chars = ty.chars();
    if let Some(first) = chars.next() {
        key.extend(first.to_uppercase());
        key.push_str(chars.as_str());
    }
    key
}

fn build(file: TypesFile<'static>) -> Result<TypeTable, DefinitionsError> {
    let mut types: Vec<TypeDef> = Vec::with_capacity(file.types.len() + 8);
    let mut by_name: FastMap<&'static str, TypeId> = FastMap::default();
    let add = |types: &mut Vec<TypeDef>,
               by_name: &mut FastMap<&'static str, TypeId>,
               name: &'static str,
               kind: TypeKind,
               is_abstract: bool|
     -> Result<TypeId, DefinitionsError> {
        let id =
            TypeId(u16::try_from(types.len()).map_err(|_| DefinitionsError::DuplicateType(name))?);
        if by_name.insert(name, id).is_some() {
            return Err(DefinitionsError::DuplicateType(name));
        }
        types.push(TypeDef {
            name,
            kind,
            base: None,
            is_abstract,
            elements: Vec::new(),
            keys: FastMap::default(),
            required: Vec::new(),
        });
        Ok(id)
    };

    // Pass 1: every named type, and the system types primitives' values use.
    for raw in &file.types {
        let kind = match raw.kind {
            RawKind::Primitive => TypeKind::Primitive(Primitive::from_name(raw.name).ok_or(
                DefinitionsError::UnknownType {
                    owner: raw.name,
                    name: raw.name,
                },
            )?),
            RawKind::Complex => TypeKind::Complex,
            RawKind::Resource => TypeKind::Resource,
            RawKind::Backbone => TypeKind::Backbone,
        };
        add(&mut types, &mut by_name, raw.name, kind, raw.is_abstract)?;
    }
    for raw in &file.types {
        for el in &raw.elements {
            for &ty in &el.3 {
                if ty.starts_with("System.") && !by_name.contains_key(ty) {
                    add(&mut types, &mut by_name, ty, TypeKind::System, false)?;
                }
            }
        }
    }

    // Pass 2: bases and own elements.
    for raw in &file.types {
        let id = by_name[raw.name];
        let base = match raw.base {
            Some(b) => Some(*by_name.get(b).ok_or(DefinitionsError::UnknownType {
                owner: raw.name,
                name: b,
            })?),
            None => None,
        };
        let mut elements = Vec::with_capacity(raw.elements.len());
        for el in &raw.elements {
            let (raw_name, min, max, type_names, content_reference, summary) =
                (el.0, el.1, el.2, &el.3, el.4, el.5);
            let bad = |message| DefinitionsError::BadElement {
                owner: raw.name,
                element: raw_name,
                message,
            };
            let (name, is_choice) = match raw_name.strip_suffix("[x]") {
                Some(n) => (n, true),
                None => (raw_name, false),
            };
            if type_names.is_empty() {
                return Err(bad("no type"));
            }
            // The generator resolves a contentReference (`#Questionnaire.item`) to the referenced
            // backbone type; make sure the data says so.
            if let Some(target) = content_reference
                && type_names.as_slice() != [target.trim_start_matches('#')]
            {
                return Err(bad("contentReference does not match the element type"));
            }
            if !is_choice && type_names.len() != 1 {
                return Err(bad("several types on a non-choice element"));
            }
            if type_names.len() > usize::from(u8::MAX) {
                return Err(bad("too many choice types"));
            }
            let mut type_ids = Vec::with_capacity(type_names.len());
            for &t in type_names.iter() {
                type_ids.push(*by_name.get(t).ok_or(DefinitionsError::UnknownType {
                    owner: raw.name,
                    name: t,
                })?);
            }
            let (json_keys, underscore_keys): (Vec<&'static str>, Vec<&'static str>) = if is_choice
            {
                type_names
                    .iter()
                    .map(|t| {
                        let key = choice_key(name, t);
                        let underscore = format!("_{key}");
                        (leak_str(key), leak_str(underscore))
                    })
                    .unzip()
            } else {
                (vec![name], vec![leak_str(format!("_{name}"))])
            };
            let many = match max {
                "*" => true,
                "1" | "0" => false,
                _ => return Err(bad("max is neither 0, 1 nor *")),
            };
            elements.push(ElementDef {
                name,
                min,
                many,
                is_choice,
                types: leak(type_names.clone()),
                type_ids: type_ids.into_boxed_slice(),
                json_keys: leak(json_keys),
                underscore_keys: leak(underscore_keys),
                summary,
            });
        }
        let def = &mut types[usize::from(id.0)];
        def.base = base;
        def.elements = elements;
    }

    // Pass 3: flattened key tables, bases before derived types.
    let depth_of = |types: &Vec<TypeDef>, mut id: TypeId| {
        let mut depth = 0usize;
        while let Some(b) = types[usize::from(id.0)].base {
            id = b;
            depth += 1;
            if depth > 16 {
                break;
            }
        }
        depth
    };
    let mut order: Vec<TypeId> = (0..types.len()).map(|i| TypeId(i as u16)).collect();
    order.sort_by_key(|&id| depth_of(&types, id));
    for id in order {
        let def = &types[usize::from(id.0)];
        let (mut keys, mut required) = match def.base {
            Some(b) => {
                let base = &types[usize::from(b.0)];
                (base.keys.clone(), base.required.clone())
            }
            None => (FastMap::default(), Vec::new()),
        };
        for (index, el) in def.elements.iter().enumerate() {
            let index = u16::try_from(index).map_err(|_| DefinitionsError::BadElement {
                owner: def.name,
                element: el.name,
                message: "too many elements",
            })?;
            let at = |variant| ElementRef {
                owner: id,
                index,
                variant,
            };
            // An own element replaces an inherited one of the same name (Age.value over Quantity.value).
            required.retain(|r: &ElementRef| {
                types[usize::from(r.owner.0)].elements[usize::from(r.index)].name != el.name
            });
            if el.is_choice {
                keys.insert(el.name, at(Variant::ChoiceBase));
                for (i, &k) in el.json_keys.iter().enumerate() {
                    keys.insert(k, at(Variant::Choice(i as u8)));
                }
            } else {
                keys.insert(el.name, at(Variant::Plain));
            }
            if el.min >= 1 {
                required.push(at(Variant::Plain));
            }
        }
        let def = &mut types[usize::from(id.0)];
        def.keys = keys;
        def.required = required;
    }

    let mut resource_types: Vec<&'static str> = types
        .iter()
        .filter(|t| t.kind == TypeKind::Resource && !t.is_abstract)
        .map(|t| t.name)
        .collect();
    resource_types.sort_unstable();
    let well_known = |name: &'static str| {
        by_name
            .get(name)
            .copied()
            .ok_or(DefinitionsError::MissingType(name))
    };
    Ok(TypeTable {
        fhir_version: file.fhir_version,
        element_type: well_known("Element")?,
        extension_type: well_known("Extension")?,
        reference_type: well_known("Reference")?,
        resource_type: well_known("Resource")?,
        types,
        by_name,
        resource_types,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> &'static TypeTable {
        &crate::r4().types
    }

    #[test]
    fn loads_all_r4_types() {
        let t = table();
        assert_eq!(t.fhir_version, "4.0.1");
        assert_eq!(t.resource_types().len(), 146);
        assert!(t.concrete_resource("Patient").is_some());
        assert!(t.concrete_resource("DomainResource").is_none());
        assert!(t.concrete_resource("SubscriptionStatus").is_none());
        assert!(t.by_name("Patient.contact").is_some());
        assert!(t.by_name("System.String").is_some());
    }

    #[test]
    fn choice_keys_are_expanded() {
        let t = table();
        let obs = t.id("Observation").unwrap();
        let r = t.lookup(obs, "valueQuantity").unwrap();
        assert!(matches!(r.variant, Variant::Choice(_)));
        let el = t.element(r);
        assert_eq!(el.name, "value");
        assert!(el.is_choice);
        assert_eq!(t.lookup(obs, "value").unwrap().variant, Variant::ChoiceBase);
        assert!(t.lookup(obs, "valueFoo").is_none());
        let r = t.lookup(obs, "valueDateTime").unwrap();
        let Variant::Choice(i) = r.variant else {
            panic!()
        };
        assert_eq!(t.element(r).types[usize::from(i)], "dateTime");
    }

    #[test]
    fn inherited_elements_resolve_through_bases() {
        let t = table();
        let patient = t.id("Patient").unwrap();
        for key in [
            "id",
            "meta",
            "implicitRules",
            "language",
            "text",
            "contained",
            "extension",
            "modifierExtension",
        ] {
            assert!(t.lookup(patient, key).is_some(), "{key}");
        }
        let contact = t.id("Patient.contact").unwrap();
        for key in ["id", "extension", "modifierExtension", "name"] {
            assert!(t.lookup(contact, key).is_some(), "{key}");
        }
        let string = t.id("string").unwrap();
        for key in ["id", "extension", "value"] {
            assert!(t.lookup(string, key).is_some(), "{key}");
        }
        // Resource.id is typed `id` (see the generator), Element.id stays `string`.
        assert_eq!(t.element(t.lookup(patient, "id").unwrap()).types, ["id"]);
        assert_eq!(
            t.element(t.lookup(contact, "id").unwrap()).types,
            ["string"]
        );
    }

    #[test]
    fn subtypes() {
        let t = table();
        let id = |n| t.id(n).unwrap();
        assert!(t.is_subtype(id("Age"), id("Quantity")));
        assert!(t.is_subtype(id("SimpleQuantity"), id("Quantity")));
        assert!(t.is_subtype(id("Patient"), id("Resource")));
        assert!(t.is_subtype(id("Patient.contact"), id("Element")));
        assert!(t.is_subtype(id("code"), id("string")));
        assert!(!t.is_subtype(id("Quantity"), id("Age")));
    }

    #[test]
    fn required_elements() {
        let t = table();
        let obs = t.get(t.id("Observation").unwrap());
        let names: Vec<_> = obs.required.iter().map(|r| t.element(*r).name).collect();
        assert_eq!(names, ["status", "code"]);
        let ext = t.get(t.extension_type);
        let names: Vec<_> = ext.required.iter().map(|r| t.element(*r).name).collect();
        assert_eq!(names, ["url"]);
    }
}
