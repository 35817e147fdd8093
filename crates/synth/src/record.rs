//! Turns a patient model into resources, in a fixed order: Patient, Consent(s), Vitalstatus,
//! chronic Conditions, MedicationStatements, then each contact with its Encounter(s), main Condition,
//! Procedures, MedicationAdministrations and lab reports.

use crate::catalog::icd::Course;
use crate::date::Day;
use crate::hospital::Hospital;
use crate::patient::{Contact, Model};
use crate::resources::common::Emitter;
use crate::resources::encounter::{
    ConditionArgs, EncounterArgs, ProcedureArgs, emit_condition, emit_encounter, emit_procedure,
};
use crate::resources::lab::{self, LabContext, ReportIds};
use crate::resources::medication::{
    AdministrationArgs, StatementArgs, emit_administration, emit_statement,
};
use crate::resources::{consent, patient};
use crate::rng::Rng;

/// Separates the emission stream (times, lab values) from the model stream of the same patient.
const EMIT_SALT: u64 = 0x454D_4954_5445_5221;

pub fn chronic_condition_id(patient: &str, n: usize) -> String {
    format!("{patient}-c{}", n + 1)
}

pub fn emit(em: &mut Emitter, m: &Model, hosp: &Hospital, seed: u64, as_of: Day) {
    let mut rng = Rng::new(seed ^ EMIT_SALT, m.index);
    let pid = m.id.as_str();
    patient::emit(em, m, hosp, as_of);
    consent::emit(em, m, &hosp.id);

    let chronic_ids: Vec<String> = (0..m.chronic.len())
        .map(|n| chronic_condition_id(pid, n))
        .collect();
    for (c, id) in m.chronic.iter().zip(&chronic_ids) {
        let onset = c.onset.date_string();
        emit_condition(
            em,
            &ConditionArgs {
                id,
                patient: pid,
                icd: c.icd,
                onset: &onset,
                recorded: &onset,
                encounter: None,
                resolved: false,
            },
        );
    }
    let death = m.person.death.map(Day::date_string);
    for (n, s) in m.statements.iter().enumerate() {
        let start = s.start.date_string();
        emit_statement(
            em,
            &StatementArgs {
                id: &format!("{pid}-ms{}", n + 1),
                patient: pid,
                atc: s.atc,
                start: &start,
                end: death.as_deref(),
                reason_condition: &chronic_ids[s.reason],
            },
        );
    }

    let case_system = hosp.identifier_system("fallnummer");
    let lab_system = hosp.identifier_system("labor");
    for (n, c) in m.contacts.iter().enumerate() {
        emit_contact(
            em,
            &mut rng,
            m,
            hosp,
            c,
            &format!("{pid}-e{}", n + 1),
            &chronic_ids,
            &case_system,
            &lab_system,
        );
    }
}

#[allow(clippy::too_many_arguments)] // private step of `emit`; the arguments are its locals
fn emit_contact(
    em: &mut Emitter,
    rng: &mut Rng,
    m: &Model,
    hosp: &Hospital,
    c: &Contact,
    enc_id: &str,
    chronic_ids: &[String],
    case_system: &str,
    lab_system: &str,
) {
    let pid = m.id.as_str();
    let (start, end) = if c.inpatient {
        (c.start.date_string(), c.end().date_string())
    } else {
        let minute = 7 * 60 + rng.below(9 * 60) as u32;
        (
            c.start.date_time_string(minute),
            c.start.date_time_string(minute + 20 + rng.below(70) as u32),
        )
    };

    let main_id = match c.main_chronic {
        Some(i) => chronic_ids[i].clone(),
        None => format!("{enc_id}-dx"),
    };
    let mut diagnoses = vec![main_id.clone()];
    for (i, ch) in m.chronic.iter().enumerate() {
        if diagnoses.len() >= 6 {
            break;
        }
        if ch.onset <= c.start && Some(i) != c.main_chronic {
            diagnoses.push(chronic_ids[i].clone());
        }
    }
    emit_encounter(
        em,
        &EncounterArgs {
            id: enc_id,
            patient: pid,
            hospital_id: &hosp.id,
            hospital_name: &hosp.name,
            case_system,
            inpatient: c.inpatient,
            department: c.department,
            start: &start,
            end: &end,
            diagnoses: &diagnoses,
            died: c.died_here,
        },
    );
    if c.main_chronic.is_none() {
        let day = c.start.date_string();
        emit_condition(
            em,
            &ConditionArgs {
                id: &main_id,
                patient: pid,
                icd: c.main,
                onset: &day,
                recorded: &day,
                encounter: Some(enc_id),
                resolved: c.main.course == Course::Acute && !c.died_here,
            },
        );
    }
    for (k, code) in c.procedures.iter().enumerate() {
        let day = c.start.plus(if c.days > 0 {
            rng.below(c.days.min(3) as u64) as i32
        } else {
            0
        });
        let performed = day.date_time_string(8 * 60 + rng.below(8 * 60) as u32);
        emit_procedure(
            em,
            &ProcedureArgs {
                id: &format!("{enc_id}-p{}", k + 1),
                patient: pid,
                encounter: enc_id,
                ops: code,
                performed: &performed,
            },
        );
    }
    let mut admin_n = 0;
    for (atc, times) in &c.administrations {
        for t in 0..*times {
            admin_n += 1;
            let day = c.start.plus(i32::from(t).min(c.days));
            let when = day.date_time_string(8 * 60 + rng.below(12 * 60) as u32);
            emit_administration(
                em,
                &AdministrationArgs {
                    id: &format!("{enc_id}-m{admin_n}"),
                    patient: pid,
                    encounter: enc_id,
                    atc,
                    when: &when,
                },
            );
        }
    }
    let age = m.person.birth.years_until(c.start).max(0);
    let draws = c.draws.len().max(1);
    for (k, (offset, labs)) in c.draws.iter().enumerate() {
        let cx = LabContext {
            sex: m.person.sex,
            age,
            flags: &m.flags,
            cirrhosis: m.cirrhosis,
            main: c.main,
            recovery: k as f64 / draws as f64,
        };
        let results = lab::draw(rng, labs, &cx);
        let effective = c
            .start
            .plus(*offset)
            .date_time_string(6 * 60 + rng.below(4 * 60) as u32);
        lab::emit_report(
            em,
            &ReportIds {
                patient: pid,
                encounter: enc_id,
                prefix: &format!("{enc_id}-l{}", k + 1),
                identifier_system: lab_system,
                hospital: &hosp.id,
            },
            m.person.sex,
            &results,
            &effective,
        );
    }
}
