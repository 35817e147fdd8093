//! `medicus admin tenant create|list`; users, clients and tokens in `auth_admin`.

use medicus_store::tenant::validate_tenant_id;

use crate::cli::{AdminArgs, AdminCommand, TenantCommand};
use crate::config::{Database, FileConfig, database};
use crate::error::CliError;

pub fn run(args: AdminArgs, file: &FileConfig) -> Result<(), CliError> {
    match args.command {
        AdminCommand::User(command) => super::auth_admin::run_user(command, file),
        AdminCommand::Client(command) => super::auth_admin::run_client(command, file),
        AdminCommand::Token(args) => super::auth_admin::run_token(args, file),
        AdminCommand::S3Key(command) => super::s3::run_key(command, file),
        AdminCommand::Idp(command) => super::idp_admin::run(command, file),
        AdminCommand::Tenant(TenantCommand::Create { id, data }) => {
            // Check the id before anything touches the data directory.
            validate_tenant_id(&id)?;
            let store = super::open_store(&database(&data, file)?)?;
            if store.create_tenant(&id)? {
                super::say(format_args!("created tenant {id}"));
            } else {
                super::say(format_args!("tenant {id} already exists"));
            }
            Ok(())
        }
        AdminCommand::Tenant(TenantCommand::List { data }) => {
            let database = database(&data, file)?;
            // Listing never creates a local store.
            if let Database::Sqlite(dir) = &database
                && !dir.is_dir()
            {
                return Err(CliError::NoDataDir(dir.clone()));
            }
            let store = super::open_store(&database)?;
            for tenant in store.list_tenants()? {
                super::say(format_args!("{tenant}"));
            }
            Ok(())
        }
    }
}
