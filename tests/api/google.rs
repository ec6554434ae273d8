//! Real Google credentials against a fake Google that verifies every token:
//! key files by flag and by environment, the metadata server, per-org
//! impersonation, refused and broken credentials, long queries in each
//! reply shape, and the projects a query may read.

use serde_json::{Value, json};

use crate::helpers::{
    Caller, Completion, DEFAULT_METADATA_ACCOUNT, FakeGoogle, GqlError, SECRET, ServerProcess,
    TestApp, objective_input, spawn_app_with, unique_org,
};

const SA: &str = "okr-pulse@vendor-project.iam.gserviceaccount.com";
const PROJECT: &str = "acme-analytics";
const CREATE: &str =
    "mutation($input: CreateConnectionInput!) { createConnection(input: $input) { id } }";
const TEST: &str = "mutation($id: ID!) { testConnection(id: $id) { ok message } }";
const SETUP: &str =
    "{ bigQuerySetup { serviceAccountEmail credentialSource requiredPermissions } }";
const LINK: &str = "mutation($input: LinkDataSourceInput!) { linkDataSource(input: $input) { id state lastValue syncRuns { jobId } } }";
const REFRESH: &str = "mutation($id: ID!) { refreshDataSource(id: $id) { state lastValue lastError { code reason message transient } syncRuns { outcome jobId } } }";

/// A server whose BigQuery is the fake, with `adjust` applied last.
async fn app_on(fake: &FakeGoogle, adjust: impl FnOnce(&mut okr_pulse::config::Config)) -> TestApp {
    let url = fake.url.clone();
    spawn_app_with(move |config| {
        config.bigquery.emulator_host = None;
        config.bigquery.endpoint = Some(url.clone());
        config.bigquery.iam_credentials_endpoint = url;
        config.bigquery.retry_budget = std::time::Duration::from_secs(2);
        adjust(config);
    })
    .await
}

/// A server with no key file, whose metadata server is the fake's.
async fn app_with_metadata(fake: &FakeGoogle) -> TestApp {
    let host = fake.host();
    app_on(fake, move |config| config.bigquery.gce_metadata_host = host).await
}

/// A server that queries with a service-account key file given by flag.
async fn app_with_key(fake: &FakeGoogle, dir: &std::path::Path) -> TestApp {
    let key = fake.write_key_file(dir, &fake.service_account_key(SA));
    app_on(fake, move |config| {
        config.bigquery.google_application_credentials = Some(key)
    })
    .await
}

async fn connection(app: &TestApp, admin: &Caller, project: &str) -> String {
    app.data(
        admin,
        CREATE,
        json!({ "input": { "name": format!("W {project}"), "projectId": project } }),
    )
    .await["createConnection"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn key_result(app: &TestApp, caller: &Caller) -> String {
    let objective = app.objective(caller, objective_input("Grow")).await;
    app.key_result(caller, json!({ "objectiveId": objective, "title": "Leads", "kind": "METRIC", "startValue": 0, "targetValue": 100 }))
        .await
}

async fn link(app: &TestApp, caller: &Caller, sql: &str) -> Value {
    let kr = key_result(app, caller).await;
    app.gql(
        caller,
        LINK,
        json!({ "input": { "keyResultId": kr, "sql": sql } }),
    )
    .await
}

/// Every BigQuery request the fake saw carried a verified token of
/// `principal`, our User-Agent, and no quota project.
fn all_as(fake: &FakeGoogle, project: &str, principal: &str) {
    let requests = fake.bigquery_requests(project);
    assert!(!requests.is_empty(), "no BigQuery request reached the fake");
    for r in requests {
        assert!(r.authorization_ok, "{} {} unverified", r.method, r.path);
        assert_eq!(r.principal.as_deref(), Some(principal), "{}", r.path);
        assert!(
            r.user_agent
                .as_deref()
                .is_some_and(|ua| ua.starts_with("okr-pulse/")),
            "{:?}",
            r.user_agent
        );
        assert_eq!(r.user_project, None, "{}: x-goog-user-project sent", r.path);
    }
}

#[tokio::test]
async fn a_key_file_given_by_flag_tests_links_and_refreshes_with_verified_tokens() {
    let fake = FakeGoogle::start().await;
    fake.grant(SA, PROJECT);
    let dir = tempfile::tempdir().unwrap();
    let app = app_with_key(&fake, dir.path()).await;
    let admin = Caller::admin(&unique_org("o"));
    let setup = app.data(&admin, SETUP, json!({})).await;
    assert_eq!(
        setup["bigQuerySetup"]["credentialSource"],
        "SERVICE_ACCOUNT_KEY"
    );
    assert_eq!(setup["bigQuerySetup"]["serviceAccountEmail"], SA);
    assert_eq!(
        setup["bigQuerySetup"]["requiredPermissions"],
        json!([
            "bigquery.datasets.get",
            "bigquery.jobs.create",
            "bigquery.tables.get",
            "bigquery.tables.getData"
        ])
    );
    let conn = connection(&app, &admin, PROJECT).await;
    let test = app.data(&admin, TEST, json!({ "id": conn })).await;
    assert_eq!(test["testConnection"]["ok"], true, "{test}");
    let linked = link(&app, &admin, "SELECT 42").await;
    let ds = &linked["data"]["linkDataSource"];
    assert_eq!(ds["lastValue"], 42.0, "{linked}");
    assert!(
        ds["syncRuns"][0]["jobId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    let refreshed = app.data(&admin, REFRESH, json!({ "id": ds["id"] })).await;
    assert_eq!(refreshed["refreshDataSource"]["state"], "OK");
    // Requests that carry no quota project need no serviceusage.services.use.
    all_as(&fake, PROJECT, SA);
}

#[tokio::test]
async fn the_release_binary_uses_the_key_file_named_by_the_environment() {
    let fake = FakeGoogle::start().await;
    fake.grant(SA, PROJECT);
    let dir = tempfile::tempdir().unwrap();
    let key = fake.write_key_file(dir.path(), &fake.service_account_key(SA));
    let server = ServerProcess::start(&[
        ("BIGQUERY_ENDPOINT", fake.url.clone()),
        ("GOOGLE_APPLICATION_CREDENTIALS", key.display().to_string()),
    ])
    .await;
    let keys = okr_pulse::auth::TokenKeys::from_secret(SECRET);
    let org = unique_org("p");
    let token = keys
        .mint(&okr_pulse::auth::Claims {
            sub: "ana".into(),
            email: "ana@example.com".into(),
            name: "Ana".into(),
            org,
            role: "admin".into(),
            exp: jsonwebtoken::get_current_timestamp() + 600,
            nbf: None,
        })
        .unwrap();
    let client = reqwest::Client::new();
    let call = |query: &'static str, variables: Value| {
        let request = client
            .post(format!("{}/graphql", server.address))
            .bearer_auth(&token)
            .json(&json!({ "query": query, "variables": variables }));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let setup = call(SETUP, json!({})).await;
    assert_eq!(
        setup["data"]["bigQuerySetup"]["serviceAccountEmail"], SA,
        "{setup}"
    );
    let conn = call(
        CREATE,
        json!({ "input": { "name": "W", "projectId": PROJECT } }),
    )
    .await;
    let conn = conn["data"]["createConnection"]["id"].clone();
    let test = call(TEST, json!({ "id": conn })).await;
    assert_eq!(test["data"]["testConnection"]["ok"], true, "{test}");
    let objective = call(
        "mutation($input: CreateObjectiveInput!) { createObjective(input: $input) { id } }",
        json!({ "input": objective_input("Grow") }),
    )
    .await;
    let kr = call(
        "mutation($input: CreateKeyResultInput!) { createKeyResult(input: $input) { id } }",
        json!({ "input": { "objectiveId": objective["data"]["createObjective"]["id"], "title": "Leads", "kind": "METRIC", "startValue": 0, "targetValue": 100 } }),
    )
    .await;
    let linked = call(
        LINK,
        json!({ "input": { "keyResultId": kr["data"]["createKeyResult"]["id"], "sql": "SELECT 7" } }),
    )
    .await;
    assert_eq!(
        linked["data"]["linkDataSource"]["lastValue"], 7.0,
        "{linked}"
    );
    let refreshed = call(
        REFRESH,
        json!({ "id": linked["data"]["linkDataSource"]["id"] }),
    )
    .await;
    assert_eq!(
        refreshed["data"]["refreshDataSource"]["state"], "OK",
        "{refreshed}"
    );
    all_as(&fake, PROJECT, SA);
}

#[tokio::test]
async fn the_metadata_server_gives_the_account_and_its_tokens() {
    let fake = FakeGoogle::start().await;
    fake.grant(DEFAULT_METADATA_ACCOUNT, PROJECT);
    let app = app_with_metadata(&fake).await;
    let admin = Caller::admin(&unique_org("o"));
    let setup = app.data(&admin, SETUP, json!({})).await;
    assert_eq!(
        setup["bigQuerySetup"]["credentialSource"],
        "METADATA_SERVER"
    );
    assert_eq!(
        setup["bigQuerySetup"]["serviceAccountEmail"],
        DEFAULT_METADATA_ACCOUNT
    );
    let conn = connection(&app, &admin, PROJECT).await;
    let test = app.data(&admin, TEST, json!({ "id": conn })).await;
    assert_eq!(test["testConnection"]["ok"], true, "{test}");
    all_as(&fake, PROJECT, DEFAULT_METADATA_ACCOUNT);
}

#[tokio::test]
async fn without_credentials_every_call_says_what_to_set_and_nothing_is_retried() {
    let fake = FakeGoogle::start().await;
    let app = app_on(&fake, |_| {}).await;
    let admin = Caller::admin(&unique_org("o"));
    let setup = app.data(&admin, SETUP, json!({})).await;
    assert_eq!(setup["bigQuerySetup"]["credentialSource"], "NONE");
    assert_eq!(setup["bigQuerySetup"]["serviceAccountEmail"], Value::Null);
    let conn = connection(&app, &admin, PROJECT).await;
    let test = app.data(&admin, TEST, json!({ "id": conn })).await;
    assert_eq!(test["testConnection"]["ok"], false);
    let message = test["testConnection"]["message"].as_str().unwrap();
    assert!(
        message.contains("GOOGLE_APPLICATION_CREDENTIALS"),
        "{message}"
    );
    assert!(!message.contains("could not be reached"), "{message}");
    let err = GqlError::first(&link(&app, &admin, "SELECT 1").await);
    assert_eq!(err.code, "BIGQUERY_ERROR");
    assert_eq!(err.reason.as_deref(), Some("credentials"));
    assert!(fake.bigquery_requests(PROJECT).is_empty());
}

#[tokio::test]
async fn a_wrong_key_is_a_credentials_error_and_a_broken_file_fixed_while_running_heals() {
    let fake = FakeGoogle::start().await;
    fake.grant(SA, PROJECT);
    let dir = tempfile::tempdir().unwrap();
    let path = fake.write_key_file(dir.path(), &fake.wrong_service_account_key(SA));
    let key_file = path.clone();
    let app = app_on(&fake, move |config| {
        config.bigquery.google_application_credentials = Some(key_file)
    })
    .await;
    let admin = Caller::admin(&unique_org("o"));
    let conn = connection(&app, &admin, PROJECT).await;
    let err = GqlError::first(&link(&app, &admin, "SELECT 1").await);
    assert_eq!(
        (err.code.as_str(), err.reason.as_deref()),
        ("BIGQUERY_ERROR", Some("credentials"))
    );
    assert!(err.message.contains("refused"), "{}", err.message);

    std::fs::write(&path, "{ this is not a key").unwrap();
    let test = app.data(&admin, TEST, json!({ "id": conn })).await;
    assert_eq!(test["testConnection"]["ok"], false);
    let message = test["testConnection"]["message"].as_str().unwrap();
    assert!(message.contains(&path.display().to_string()), "{message}");

    let good = fake.service_account_key(SA);
    std::fs::write(&path, serde_json::to_vec(&good).unwrap()).unwrap();
    let test = app.data(&admin, TEST, json!({ "id": conn })).await;
    assert_eq!(test["testConnection"]["ok"], true, "{test}");
}

#[tokio::test]
async fn a_401_gets_one_fresh_token_and_one_retry() {
    let fake = FakeGoogle::start().await;
    fake.grant(DEFAULT_METADATA_ACCOUNT, PROJECT);
    let app = app_with_metadata(&fake).await;
    let admin = Caller::admin(&unique_org("o"));
    connection(&app, &admin, PROJECT).await;
    let linked = link(&app, &admin, "SELECT 5").await;
    let id = linked["data"]["linkDataSource"]["id"].clone();
    fake.clear_requests();
    fake.unauthorized_once();
    let refreshed = app.data(&admin, REFRESH, json!({ "id": id })).await;
    assert_eq!(refreshed["refreshDataSource"]["state"], "OK", "{refreshed}");
    assert_eq!(fake.forced_unauthorized(), 1);
    let requests = fake.bigquery_requests(PROJECT);
    let refused = requests
        .iter()
        .find(|r| r.status == 401)
        .expect("the refused request");
    let retried = requests
        .iter()
        .rfind(|r| r.status == 200)
        .expect("the retried request");
    assert_ne!(
        refused.token, retried.token,
        "the retry must carry a fresh token"
    );

    // Refused again after the fresh token: a credentials error, and no
    // more attempts than the one retry.
    fake.clear_requests();
    fake.unauthorized_once();
    fake.unauthorized_once();
    let refreshed = app.data(&admin, REFRESH, json!({ "id": id })).await;
    let error = &refreshed["refreshDataSource"]["lastError"];
    assert_eq!(error["reason"], "credentials", "{refreshed}");
    assert_eq!(error["transient"], false);
    assert_eq!(fake.bigquery_requests(PROJECT).len(), 2);
}

#[tokio::test]
async fn a_long_query_returns_its_value_whatever_shape_its_last_reply_has() {
    let fake = FakeGoogle::start().await;
    fake.grant(SA, PROJECT);
    let dir = tempfile::tempdir().unwrap();
    let app = app_with_key(&fake, dir.path()).await;
    let admin = Caller::admin(&unique_org("o"));
    connection(&app, &admin, PROJECT).await;
    for (value, shape) in [
        (11, Completion::RowsInline),
        (12, Completion::PageTokenOnly),
        (13, Completion::NoRowsNoToken),
    ] {
        fake.slow_jobs(2, shape);
        let linked = link(&app, &admin, &format!("SELECT {value}")).await;
        let ds = &linked["data"]["linkDataSource"];
        assert_eq!(ds["lastValue"], value as f64, "{shape:?}: {linked}");
        assert!(
            ds["syncRuns"][0]["jobId"]
                .as_str()
                .is_some_and(|j| !j.is_empty())
        );
    }
    fake.fast_jobs();
    let linked = link(&app, &admin, "SELECT 14").await;
    let id = linked["data"]["linkDataSource"]["id"].clone();
    fake.slow_jobs(1, Completion::LostRows);
    let refreshed = app.data(&admin, REFRESH, json!({ "id": id })).await;
    let error = &refreshed["refreshDataSource"]["lastError"];
    assert_eq!(error["code"], "BIGQUERY_ERROR", "{refreshed}");
    assert_eq!(error["transient"], true, "{refreshed}");
    assert_eq!(refreshed["refreshDataSource"]["lastValue"], 14.0);
}

#[tokio::test]
async fn a_query_run_without_a_job_records_its_query_id() {
    let fake = FakeGoogle::start().await;
    fake.grant(SA, PROJECT);
    let dir = tempfile::tempdir().unwrap();
    let app = app_with_key(&fake, dir.path()).await;
    let admin = Caller::admin(&unique_org("o"));
    connection(&app, &admin, PROJECT).await;
    fake.without_job();
    let linked = link(&app, &admin, "SELECT 3").await;
    let job = linked["data"]["linkDataSource"]["syncRuns"][0]["jobId"].clone();
    assert!(job.as_str().is_some_and(|j| !j.is_empty()), "{linked}");
}

#[tokio::test]
async fn a_key_files_quota_project_is_not_sent_so_the_listed_permissions_suffice() {
    let fake = FakeGoogle::start().await;
    // Granted jobs in the project, but never serviceusage.services.use:
    // a request naming a quota project would get USER_PROJECT_DENIED.
    fake.grant(SA, PROJECT);
    let dir = tempfile::tempdir().unwrap();
    let mut key = fake.service_account_key(SA);
    key["quota_project_id"] = json!("billing-project");
    let path = fake.write_key_file(dir.path(), &key);
    let app = app_on(&fake, move |config| {
        config.bigquery.google_application_credentials = Some(path)
    })
    .await;
    let admin = Caller::admin(&unique_org("o"));
    connection(&app, &admin, PROJECT).await;
    let linked = link(&app, &admin, "SELECT 1").await;
    assert_eq!(
        linked["data"]["linkDataSource"]["lastValue"], 1.0,
        "{linked}"
    );
    all_as(&fake, PROJECT, SA);
}

#[tokio::test]
async fn gclouds_application_default_file_is_used_when_no_key_file_is_set() {
    let fake = FakeGoogle::start().await;
    fake.grant(SA, PROJECT);
    let dir = tempfile::tempdir().unwrap();
    let key = fake.service_account_key(SA);
    std::fs::write(
        dir.path().join("application_default_credentials.json"),
        serde_json::to_vec(&key).unwrap(),
    )
    .unwrap();
    let folder = dir.path().to_path_buf();
    let app = app_on(&fake, move |config| {
        config.bigquery.cloudsdk_config = Some(folder)
    })
    .await;
    let admin = Caller::admin(&unique_org("o"));
    let setup = app.data(&admin, SETUP, json!({})).await;
    assert_eq!(setup["bigQuerySetup"]["serviceAccountEmail"], SA);
    let conn = connection(&app, &admin, PROJECT).await;
    let test = app.data(&admin, TEST, json!({ "id": conn })).await;
    assert_eq!(test["testConnection"]["ok"], true, "{test}");
    all_as(&fake, PROJECT, SA);
}

#[tokio::test]
async fn each_org_queries_as_its_own_impersonated_account() {
    let fake = FakeGoogle::start().await;
    let host = fake.host();
    let acme = unique_org("acme");
    let globex = unique_org("globex");
    let account = |org: &str| {
        format!(
            "okr-{}@vendor-project.iam.gserviceaccount.com",
            org.replace('_', "-")
        )
    };
    fake.allow_impersonation(DEFAULT_METADATA_ACCOUNT, &account(&acme));
    fake.grant(&account(&acme), PROJECT);
    let app = app_on(&fake, move |config| {
        config.bigquery.gce_metadata_host = host;
        config.bigquery.org_service_account =
            Some("okr-{org}@vendor-project.iam.gserviceaccount.com".to_owned());
    })
    .await;
    let acme_admin = Caller::admin(&acme);
    let setup = app.data(&acme_admin, SETUP, json!({})).await;
    assert_eq!(
        setup["bigQuerySetup"]["serviceAccountEmail"],
        account(&acme).as_str()
    );
    connection(&app, &acme_admin, PROJECT).await;
    let linked = link(&app, &acme_admin, "SELECT 9").await;
    assert_eq!(
        linked["data"]["linkDataSource"]["lastValue"], 9.0,
        "{linked}"
    );
    assert_eq!(fake.principals_for(PROJECT), vec![account(&acme)]);

    // Another org may not act as acme's account, nor does its own account have acme's grant.
    let globex_admin = Caller::admin(&globex);
    let conn = connection(&app, &globex_admin, PROJECT).await;
    let test = app.data(&globex_admin, TEST, json!({ "id": conn })).await;
    assert_eq!(test["testConnection"]["ok"], false);
    let message = test["testConnection"]["message"].as_str().unwrap();
    assert!(message.contains("serviceAccountTokenCreator"), "{message}");
    assert_eq!(fake.principals_for(PROJECT), vec![account(&acme)]);
}

#[tokio::test]
async fn without_per_org_accounts_only_the_first_org_holds_connections() {
    let fake = FakeGoogle::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app_with_key(&fake, dir.path()).await;
    let first = Caller::admin(&unique_org("o"));
    connection(&app, &first, PROJECT).await;
    let other = Caller::admin(&unique_org("o"));
    let err = app
        .error(
            &other,
            CREATE,
            json!({ "input": { "name": "Theirs", "projectId": "other-project" } }),
        )
        .await;
    assert_eq!(err.code, "FORBIDDEN");
    assert!(
        err.message.contains("BIGQUERY_ORG_SERVICE_ACCOUNT"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_query_that_reads_another_projects_table_is_refused_unless_an_admin_allows_it() {
    let fake = FakeGoogle::start().await;
    fake.grant(SA, PROJECT);
    fake.grant(SA, "other-project");
    fake.set_value("other-project.sales.leads", 77.0);
    let dir = tempfile::tempdir().unwrap();
    let app = app_with_key(&fake, dir.path()).await;
    let admin = Caller::admin(&unique_org("o"));
    let conn = connection(&app, &admin, PROJECT).await;
    let sql = "SELECT COUNT(*) FROM `other-project.sales.leads`";
    let err = GqlError::first(&link(&app, &admin, sql).await);
    assert_eq!(err.code, "QUERY_NOT_ALLOWED");
    assert!(err.message.contains("'other-project'"), "{}", err.message);
    assert_eq!(app.count_rows("data_sources").await, 0);
    // The dry run was the only request: no query ran.
    let requests = fake.bigquery_requests(PROJECT);
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r.path.ends_with("/jobs") && r.body["configuration"]["dryRun"] == true),
        "{requests:?}"
    );

    let member = Caller::member(&admin.org, "mia");
    let err = app
        .error(
            &member,
            "mutation($id: ID!) { updateConnection(id: $id, input: { readableProjects: [\"other-project\"] }) { id } }",
            json!({ "id": conn }),
        )
        .await;
    assert_eq!(err.code, "FORBIDDEN");
    let updated = app
        .data(
            &admin,
            "mutation($id: ID!) { updateConnection(id: $id, input: { readableProjects: [\"other-project\"] }) { readableProjects } }",
            json!({ "id": conn }),
        )
        .await;
    assert_eq!(
        updated["updateConnection"]["readableProjects"],
        json!(["other-project"])
    );
    let linked = link(&app, &admin, sql).await;
    assert_eq!(
        linked["data"]["linkDataSource"]["lastValue"], 77.0,
        "{linked}"
    );
}

#[tokio::test]
async fn an_impersonated_service_account_file_queries_as_its_target() {
    let fake = FakeGoogle::start().await;
    let target = "okr-reader@customer-project.iam.gserviceaccount.com";
    let source = fake.service_account_key(SA);
    fake.allow_impersonation(SA, target);
    fake.grant(target, PROJECT);
    let dir = tempfile::tempdir().unwrap();
    let path = fake.write_key_file(dir.path(), &fake.impersonated_key(&source, target));
    let app = app_on(&fake, move |config| {
        config.bigquery.google_application_credentials = Some(path)
    })
    .await;
    let admin = Caller::admin(&unique_org("o"));
    let setup = app.data(&admin, SETUP, json!({})).await;
    assert_eq!(setup["bigQuerySetup"]["credentialSource"], "IMPERSONATED");
    assert_eq!(setup["bigQuerySetup"]["serviceAccountEmail"], target);
    let conn = connection(&app, &admin, PROJECT).await;
    let test = app.data(&admin, TEST, json!({ "id": conn })).await;
    assert_eq!(test["testConnection"]["ok"], true, "{test}");
    all_as(&fake, PROJECT, target);
}

#[tokio::test]
async fn the_server_refuses_to_start_with_an_endpoint_it_must_not_send_tokens_to() {
    use clap::Parser;
    for (emulator, endpoint, wanted) in [
        (None, Some("http://bigquery.internal.example"), "https://"),
        (
            Some("127.0.0.1:9050"),
            Some("https://bq.example"),
            "Set only one",
        ),
        (Some("10.0.0.8:9050"), None, "--insecure-emulator"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = okr_pulse::config::Config::try_parse_from(["okr-pulse"]).unwrap();
        config.server.listen_addr = "127.0.0.1:0".parse().unwrap();
        config.server.data_dir = dir.path().to_path_buf();
        config.auth.jwt_secret = Some(SECRET.to_owned());
        config.database.url = Some(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("t.db").display()
        ));
        config.bigquery.emulator_host = emulator.map(str::to_owned);
        config.bigquery.endpoint = endpoint.map(str::to_owned);
        let err = okr_pulse::startup::Application::build(&config)
            .await
            .err()
            .expect("the server must not start");
        assert!(err.to_string().contains(wanted), "{err}");
    }
}

#[tokio::test]
async fn a_key_file_replaced_while_running_is_used_from_the_next_call() {
    let fake = FakeGoogle::start().await;
    let other = "okr-old@vendor-project.iam.gserviceaccount.com";
    fake.grant(SA, PROJECT);
    let dir = tempfile::tempdir().unwrap();
    let path = fake.write_key_file(dir.path(), &fake.service_account_key(other));
    let key_file = path.clone();
    let app = app_on(&fake, move |config| {
        config.bigquery.google_application_credentials = Some(key_file)
    })
    .await;
    let admin = Caller::admin(&unique_org("o"));
    let conn = connection(&app, &admin, PROJECT).await;
    // A valid key without the grant: refused by BigQuery, not a credential problem.
    let test = app.data(&admin, TEST, json!({ "id": conn })).await;
    assert_eq!(test["testConnection"]["ok"], false);
    assert!(
        test["testConnection"]["message"]
            .as_str()
            .unwrap()
            .contains("bigquery.jobs.create")
    );
    let key = fake.service_account_key(SA);
    std::fs::write(&path, serde_json::to_vec_pretty(&key).unwrap()).unwrap();
    let setup = app.data(&admin, SETUP, json!({})).await;
    assert_eq!(setup["bigQuerySetup"]["serviceAccountEmail"], SA);
    let test = app.data(&admin, TEST, json!({ "id": conn })).await;
    assert_eq!(test["testConnection"]["ok"], true, "{test}");
    assert_eq!(
        fake.principals_for(PROJECT),
        vec![other.to_owned(), SA.to_owned()]
    );
}
