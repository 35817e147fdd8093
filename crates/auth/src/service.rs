
pub struct Auth; pub struct AuthConfig; pub struct JwksFetcher; pub struct Records;
