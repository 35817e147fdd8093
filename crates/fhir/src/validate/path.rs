//! The location of the node being validated, kept as a stack of borrowed segments so that the
//! FHIRPath-style expression string is only built when an issue is reported.

use std::fmt::Write;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Segment<'a> {
    Name(&'a str),
    Index(usize),
}

#[derive(Debug)]
pub(crate) struct Path<'a> {
    segments: Vec<Segment<'a>>,
}

impl<'a> Path<'a> {
    pub(crate) fn new() -> Self {
        Self {
            segments: Vec::with_capacity(16),
        }
    }

    pub(crate) fn push(&mut self, segment: Segment<'a>) {
        self.segments.push(segment);
    }

    pub(crate) fn pop(&mut self) {
        self.segments.pop();
    }

    pub(crate) fn replace_root(&mut self, name: &'a str) {
        if let Some(first) = self.segments.first_mut() {
            *first = Segment::Name(name);
        }
    }

    /// `Patient.name[0].given[1]`.
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(self.segments.len() * 8);
        for segment in &self.segments {
            match segment {
                Segment::Name(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Segment::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fhirpath_style() {
        let mut p = Path::new();
        p.push(Segment::Name("Resource"));
        p.replace_root("Patient");
        p.push(Segment::Name("name"));
        p.push(Segment::Index(0));
        p.push(Segment::Name("given"));
        p.push(Segment::Index(1));
        assert_eq!(p.render(), "Patient.name[0].given[1]");
        p.pop();
        p.pop();
        assert_eq!(p.render(), "Patient.name[0]");
    }
}
