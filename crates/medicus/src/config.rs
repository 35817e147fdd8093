//! Effective configuration: flags > environment variables > configuration file > defaults.
//!
//! clap already merges each flag with its environment variable (see [`crate::cli`]); this module
//! layers the optional TOML file and the defaults below them. The file is strict: unknown keys are
//! an error, so a misspelt setting never goes unnoticed.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use medicus_server::ServerConfig;

use crate::cli::{DataArgs, ServeArgs};

pub const DEFAULT_DATA_DIR: &str = "./medicus-data";
/// Loopback by default: authentication comes later, so nothing is exposed unless asked for.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_LOG: &str = "info";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// The TOML configuration file.
///
/// ```toml
/// data = "/var/lib/medicus"     # relative paths are relative to this file
/// database = "postgres://medicus@db.example/medicus"   # default: SQLite in `data`
/// listen = "127.0.0.1:8080"
/// log = "info"
///
/// [fhir]
/// base_url = "https://fhir.example.org"   # public origin behind a proxy; default: from Host
/// max_body_bytes = 16777216
/// max_json_depth = 64
/// default_page_size = 50
/// max_page_size = 1000
/// max_chain_depth = 4                     # links in chained / _has search parameters
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data: Option<PathBuf>,
    pub database: Option<String>,
    pub listen: Option<String>,
    pub log: Option<String>,
    #[serde(default)]
    pub fhir: FhirSection,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FhirSection {
    pub base_url: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub max_json_depth: Option<usize>,
    pub default_page_size: Option<usize>,
    pub max_page_size: Option<usize>,
    pub max_chain_depth: Option<usize>,
}

impl FileConfig {
    /// Load the file named by `--config`/`MEDICUS_CONFIG`, or nothing when none was given.
    pub fn load_optional(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
        match path {
            Some(path) => FileConfig::load(path),
            None => Ok(FileConfig::default()),
        }
    }

    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        FileConfig::parse(&text, path)
    }

    /// Parse `text` read from `path`; a relative `data` is resolved against the file's folder.
    pub fn parse(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
        let mut config: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: one_line_toml_error(text, &e),
        })?;
        if let Some(data) = config.data.take() {
            let base = path.parent().unwrap_or(Path::new(""));
            config.data = Some(if data.is_relative() {
                base.join(data)
            } else {
                data
            });
        }
        Ok(config)
    }
}

/// `line N: message`, without the multi-line snippet toml renders by default.
fn one_line_toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', " ");
    match error.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line = text.as_bytes()[..start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

/// The data directory: flag/env, then file, then the default.
pub fn data_dir(args: &DataArgs, file: &FileConfig) -> PathBuf {
    args.data
        .clone()
        .or_else(|| file.data.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

/// Where the resources are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// SQLite in this directory (the data directory unless `sqlite:DIR` says otherwise).
    Sqlite(PathBuf),
    /// A PostgreSQL URL.
    Postgres(String),
}

impl Database {
    /// Where the store is, for logs and messages (never a password).
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(dir) => format!("SQLite in {}", dir.display()),
            Database::Postgres(url) => format!("PostgreSQL {}", redact_password(url)),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The store: `--database`/`MEDICUS_DATABASE`, then the file's `database`, else SQLite in the data
/// directory. A `postgres://` or `postgresql://` URL selects PostgreSQL, `sqlite:DIR` SQLite in
/// DIR; anything else is an error, so a typo never silently falls back to a local store.
pub fn database(args: &DataArgs, file: &FileConfig) -> Result<Database, ConfigError> {
    let data = data_dir(args, file);
    let Some(value) = args.database.as_ref().or(file.database.as_ref()) else {
        return Ok(Database::Sqlite(data));
    };
    let value = value.trim();
    if medicus_store::postgres::is_postgres_url(value) {
        return Ok(Database::Postgres(value.to_owned()));
    }
    if let Some(dir) = value.strip_prefix("sqlite:") {
        if dir.is_empty() {
            return Ok(Database::Sqlite(data));
        }
        return Ok(Database::Sqlite(PathBuf::from(dir)));
    }
    Err(invalid(
        "database",
        "expected postgres://user@host[:port]/database, postgresql://…, or sqlite:DIR",
    ))
}

/// Effective settings of `serve` and `demo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeSettings {
    pub data: PathBuf,
    pub database: Database,
    pub listen: String,
    pub server: ServerConfig,
    /// The server key of the authorisation server (`--server-key-file`, else `DATA/server.key`).
    pub server_key_file: PathBuf,
    /// Proxies whose `X-Forwarded-For` is believed (`--trusted-proxy`).
    pub trusted_proxies: Vec<medicus_server::auth::IpNet>,
    /// The trust centre's key file (`--trust-centre-key-file`).
    pub trust_centre_key_file: Option<PathBuf>,
    /// The S3 listener (`--s3-listen`, `--s3-domain`, `--master-key-file`).
    pub s3: crate::commands::s3::S3Settings,
}

impl ServeSettings {
    pub fn resolve(args: &ServeArgs, file: &FileConfig) -> Result<ServeSettings, ConfigError> {
        let listen = args
            .listen
            .clone()
            .or_else(|| file.listen.clone())
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        if listen.trim().is_empty() {
            return Err(invalid("listen", "empty address"));
        }

        let mut server = ServerConfig::default();
        if let Some(url) = args.base_url.as_ref().or(file.fhir.base_url.as_ref()) {
            let url = url.trim_end_matches('/');
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"))
                .unwrap_or("");
            if rest.is_empty() || rest.contains(['?', '#']) {
                return Err(invalid("base_url", "expected http(s)://host[:port][/path]"));
            }
            server.base_url = Some(url.to_owned());
        }
        let positive = |key: &'static str, value: Option<usize>, slot: &mut usize| match value {
            Some(0) => Err(invalid(key, "must be greater than 0")),
            Some(v) => {
                *slot = v;
                Ok(())
            }
            None => Ok(()),
        };
        positive(
            "max_body_bytes",
            args.max_body_bytes.or(file.fhir.max_body_bytes),
            &mut server.max_body_bytes,
        )?;
        positive(
            "max_json_depth",
            file.fhir.max_json_depth,
            &mut server.max_json_depth,
        )?;
        positive(
            "default_page_size",
            file.fhir.default_page_size,
            &mut server.default_page_size,
        )?;
        positive(
            "max_page_size",
            file.fhir.max_page_size,
            &mut server.max_page_size,
        )?;
        positive(
            "max_chain_depth",
            file.fhir.max_chain_depth,
            &mut server.max_chain_depth,
        )?;
        if server.default_page_size > server.max_page_size {
            return Err(invalid(
                "default_page_size",
                "must not exceed max_page_size",
            ));
        }

        let data = data_dir(&args.data, file);
        let database = database(&args.data, file)?;
        server.bulk_dir = data.join("bulk");
        let server_key_file = args
            .server_key_file
            .clone()
            .unwrap_or_else(|| data.join("server.key"));
        let trusted_proxies = medicus_server::auth::parse_trusted(&args.trusted_proxies)
            .map_err(|e| invalid("trusted_proxy", &e.to_string()))?;
        Ok(ServeSettings {
            data,
            database,
            listen,
            server,
            server_key_file,
            trusted_proxies,
            trust_centre_key_file: args.trust_centre_key_file.clone(),
            s3: crate::commands::s3::S3Settings::resolve(args),
        })
    }
}

fn invalid(key: &'static str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.to_owned(),
    }
}

/// The log filter: `--log`/`MEDICUS_LOG`, then `RUST_LOG`, then the file, then `info`.
pub fn log_filter(flag_or_env: Option<&str>, rust_log: Option<&str>, file: &FileConfig) -> String {
    flag_or_env
        .or(rust_log)
        .or(file.log.as_deref())
        .unwrap_or(DEFAULT_LOG)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    /// Tests that let clap read the process environment hold this lock.
    static ENV_LOCK: Mutex<()> = Mutex::new(());
    const VARS: [&str; 7] = [
        "MEDICUS_BASE_URL",
        "MEDICUS_DATABASE",
        "MEDICUS_DATA",
        "MEDICUS_LISTEN",
        "MEDICUS_MAX_BODY_BYTES",
        "MEDICUS_LOG",
        "MEDICUS_CONFIG",
    ];

    fn file(text: &str) -> FileConfig {
        FileConfig::parse(text, Path::new("/etc/medicus/medicus.toml")).unwrap()
    }

    /// Parse `args` with exactly the environment variables `env` set.
    fn parse_with_env(args: &[&str], env: &[(&str, &str)]) -> Cli {
        let _guard = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: every test that reads these variables holds ENV_LOCK; nothing else reads them.
        unsafe {
            for var in VARS {
                std::env::remove_var(var);
            }
            for (k, v) in env {
                std::env::set_var(k, v);
            }
        }
        let cli = Cli::try_parse_from(args);
        unsafe {
            for (k, _) in env {
                std::env::remove_var(k);
            }
        }
        cli.unwrap()
    }

    fn serve_args(cli: &Cli) -> &ServeArgs {
        match &cli.command {
            Command::Serve(args) => args,
            Command::Demo(args) => &args.serve,
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let cli = parse_with_env(&["medicus", "serve"], &[]);
        let s = ServeSettings::resolve(serve_args(&cli), &FileConfig::default()).unwrap();
        assert_eq!(s.data, PathBuf::from("./medicus-data"));
        assert_eq!(s.listen, "127.0.0.1:8080");
        assert_eq!(
            s.server,
            ServerConfig {
                bulk_dir: s.data.join("bulk"),
                ..ServerConfig::default()
            }
        );
        assert_eq!(
            log_filter(cli.log.as_deref(), None, &FileConfig::default()),
            "info"
        );
    }

    #[test]
    fn file_overrides_defaults() {
        let cli = parse_with_env(&["medicus", "serve"], &[]);
        let f = file(
            "data = \"/srv/medicus\"\nlisten = \"0.0.0.0:9000\"\nlog = \"debug\"\n\
             [fhir]\nmax_body_bytes = 1000\nbase_url = \"https://fhir.example.org/\"\n\
             max_json_depth = 10\ndefault_page_size = 7\nmax_page_size = 70\n",
        );
        let s = ServeSettings::resolve(serve_args(&cli), &f).unwrap();
        assert_eq!(s.data, PathBuf::from("/srv/medicus"));
        assert_eq!(s.listen, "0.0.0.0:9000");
        assert_eq!(s.server.max_body_bytes, 1000);
        assert_eq!(
            s.server.base_url.as_deref(),
            Some("https://fhir.example.org")
        );
        assert_eq!(s.server.max_json_depth, 10);
        assert_eq!(s.server.default_page_size, 7);
        assert_eq!(s.server.max_page_size, 70);
        assert_eq!(log_filter(None, None, &f), "debug");
    }

    #[test]
    fn env_overrides_file() {
        let cli = parse_with_env(
            &["medicus", "serve"],
            &[
                ("MEDICUS_DATA", "/env/data"),
                ("MEDICUS_LISTEN", "127.0.0.1:7000"),
                ("MEDICUS_MAX_BODY_BYTES", "2000"),
                ("MEDICUS_BASE_URL", "http://env.example"),
                ("MEDICUS_LOG", "warn"),
            ],
        );
        let f = file(
            "data = \"/srv/medicus\"\nlisten = \"0.0.0.0:9000\"\nlog = \"debug\"\n\
             [fhir]\nmax_body_bytes = 1000\nbase_url = \"http://file.example\"\n",
        );
        let s = ServeSettings::resolve(serve_args(&cli), &f).unwrap();
        assert_eq!(s.data, PathBuf::from("/env/data"));
        assert_eq!(s.listen, "127.0.0.1:7000");
        assert_eq!(s.server.max_body_bytes, 2000);
        assert_eq!(s.server.base_url.as_deref(), Some("http://env.example"));
        assert_eq!(log_filter(cli.log.as_deref(), Some("error"), &f), "warn");
    }

    #[test]
    fn flags_override_env_and_file() {
        let cli = parse_with_env(
            &[
                "medicus",
                "--log",
                "trace",
                "demo",
                "--data",
                "/flag/data",
                "--listen",
                "127.0.0.1:6000",
                "--max-body-bytes",
                "3000",
                "--base-url",
                "https://flag.example/fhir-proxy",
            ],
            &[
                ("MEDICUS_DATA", "/env/data"),
                ("MEDICUS_LISTEN", "127.0.0.1:7000"),
                ("MEDICUS_MAX_BODY_BYTES", "2000"),
                ("MEDICUS_BASE_URL", "http://env.example"),
                ("MEDICUS_LOG", "warn"),
            ],
        );
        let f = file(
            "data = \"/srv/medicus\"\nlisten = \"0.0.0.0:9000\"\n\
             [fhir]\nmax_body_bytes = 1000\nbase_url = \"http://file.example\"\n",
        );
        let s = ServeSettings::resolve(serve_args(&cli), &f).unwrap();
        assert_eq!(s.data, PathBuf::from("/flag/data"));
        assert_eq!(s.listen, "127.0.0.1:6000");
        assert_eq!(s.server.max_body_bytes, 3000);
        assert_eq!(
            s.server.base_url.as_deref(),
            Some("https://flag.example/fhir-proxy")
        );
        assert_eq!(log_filter(cli.log.as_deref(), Some("error"), &f), "trace");
    }

    #[test]
    fn rust_log_sits_between_medicus_log_and_the_file() {
        let f = file("log = \"debug\"\n");
        assert_eq!(log_filter(None, Some("error"), &f), "error");
        assert_eq!(log_filter(Some("warn"), Some("error"), &f), "warn");
    }

    #[test]
    fn config_path_comes_from_flag_or_env() {
        let cli = parse_with_env(
            &["medicus", "serve"],
            &[("MEDICUS_CONFIG", "/env/medicus.toml")],
        );
        assert_eq!(cli.config, Some(PathBuf::from("/env/medicus.toml")));
        let cli = parse_with_env(
            &["medicus", "serve", "--config", "/flag/medicus.toml"],
            &[("MEDICUS_CONFIG", "/env/medicus.toml")],
        );
        assert_eq!(cli.config, Some(PathBuf::from("/flag/medicus.toml")));
    }

    #[test]
    fn admin_data_dir_follows_the_same_precedence() {
        let f = file("data = \"/srv/medicus\"\n");
        let cli = parse_with_env(
            &["medicus", "admin", "tenant", "list"],
            &[("MEDICUS_DATA", "/env/data")],
        );
        let Command::Admin(admin) = &cli.command else {
            panic!()
        };
        let crate::cli::AdminCommand::Tenant(crate::cli::TenantCommand::List { data }) =
            &admin.command
        else {
            panic!()
        };
        assert_eq!(data_dir(data, &f), PathBuf::from("/env/data"));
        assert_eq!(
            data_dir(&DataArgs::default(), &f),
            PathBuf::from("/srv/medicus")
        );
        assert_eq!(
            data_dir(&DataArgs::default(), &FileConfig::default()),
            PathBuf::from("./medicus-data")
        );
    }

    #[test]
    fn database_follows_flag_env_file_and_defaults_to_sqlite() {
        let args = |cli: &Cli| serve_args(cli).data.clone();
        let cli = parse_with_env(&["medicus", "serve", "--data", "/d"], &[]);
        assert_eq!(
            database(&args(&cli), &FileConfig::default()).unwrap(),
            Database::Sqlite(PathBuf::from("/d"))
        );
        let f = file("database = \"postgres://file@db/medicus\"\n");
        assert_eq!(
            database(&args(&cli), &f).unwrap(),
            Database::Postgres("postgres://file@db/medicus".into())
        );
        let cli = parse_with_env(
            &["medicus", "serve"],
            &[("MEDICUS_DATABASE", "postgresql://env@db:5433/m")],
        );
        assert_eq!(
            database(&args(&cli), &f).unwrap(),
            Database::Postgres("postgresql://env@db:5433/m".into())
        );
        let cli = parse_with_env(
            &[
                "medicus",
                "import",
                "--database",
                "sqlite:/flag",
                "x.ndjson",
            ],
            &[("MEDICUS_DATABASE", "postgresql://env@db/m")],
        );
        let Command::Import(import) = &cli.command else {
            panic!()
        };
        assert_eq!(
            database(&import.data, &f).unwrap(),
            Database::Sqlite(PathBuf::from("/flag"))
        );
        for bad in ["mysql://x/y", "/var/lib/medicus", "postgres:/x"] {
            let args = DataArgs {
                database: Some(bad.into()),
                ..DataArgs::default()
            };
            assert!(database(&args, &FileConfig::default()).is_err(), "{bad}");
        }
        let s = ServeSettings::resolve(&ServeArgs::default(), &f).unwrap();
        assert_eq!(
            s.database,
            Database::Postgres("postgres://file@db/medicus".into())
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_password("postgres://u:secret@h:5432/db?sslmode=disable"),
            "postgres://u:***@h:5432/db?sslmode=disable"
        );
        assert_eq!(redact_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_password("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            Database::Postgres("postgresql://a:b@c/d".into()).describe(),
            "PostgreSQL postgresql://a:***@c/d"
        );
    }

    #[test]
    fn relative_data_in_the_file_is_relative_to_the_file() {
        assert_eq!(
            file("data = \"store\"\n").data,
            Some(PathBuf::from("/etc/medicus/store"))
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line_number() {
        for text in [
            "data = \"x\"\nlisten_addr = \"y\"\n",
            "[fhir]\nmax_body = 1\n",
            "[server]\n",
        ] {
            let err = FileConfig::parse(text, Path::new("m.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("unknown field"), "{err}");
            assert!(err.contains("line "), "{err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn wrong_types_are_errors() {
        let err = FileConfig::parse("[fhir]\nmax_body_bytes = \"big\"\n", Path::new("m.toml"))
            .unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn trusted_proxies() {
        let args = ServeArgs {
            trusted_proxies: vec!["10.0.0.0/8,127.0.0.1".into(), "::1".into()],
            ..ServeArgs::default()
        };
        let settings = ServeSettings::resolve(&args, &FileConfig::default()).unwrap();
        assert_eq!(settings.trusted_proxies.len(), 3);
        let args = ServeArgs {
            trusted_proxies: vec!["proxy.local".into()],
            ..ServeArgs::default()
        };
        assert!(ServeSettings::resolve(&args, &FileConfig::default()).is_err());
    }

    #[test]
    fn invalid_values_are_rejected() {
        let args = ServeArgs {
            max_body_bytes: Some(0),
            ..ServeArgs::default()
        };
        assert!(ServeSettings::resolve(&args, &FileConfig::default()).is_err());
        for text in [
            "[fhir]\nmax_page_size = 0\n",
            "[fhir]\ndefault_page_size = 100\nmax_page_size = 10\n",
            "[fhir]\nbase_url = \"ftp://x\"\n",
            "[fhir]\nbase_url = \"https://\"\n",
            "listen = \"\"\n",
        ] {
            let f = file(text);
            assert!(
                ServeSettings::resolve(&ServeArgs::default(), &f).is_err(),
                "{text}"
            );
        }
    }
}
