use serde_json::{Value, json};

use crate::helpers::{
    Caller, FakeGoogle, PROJECT, TestApp, spawn_app, spawn_app_with, spawn_app_with_emulator,
    unique_org,
};

const CREATE: &str = "mutation($input: CreateConnectionInput!) { createConnection(input: $input) { id name projectId location owner { name } sharedWithEveryone canManage canUse } }";
const SHARE: &str = "mutation($id: ID!, $input: ShareConnectionInput!) { shareConnection(id: $id, input: $input) { sharedWithEveryone sharedWith { id } } }";
const LIST: &str = "{ connections { name } }";

pub async fn create_connection(app: &TestApp, caller: &Caller, name: &str) -> String {
    let data = app
        .data(
            caller,
            CREATE,
            json!({ "input": { "name": name, "projectId": PROJECT } }),
        )
        .await;
    data["createConnection"]["id"].as_str().unwrap().to_owned()
}

async fn names(app: &TestApp, caller: &Caller) -> Vec<String> {
    app.data(caller, LIST, json!({})).await["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn user_id(app: &TestApp, caller: &Caller) -> String {
    app.data(caller, "{ me { id } }", json!({})).await["me"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_admin_creates_a_connection_with_a_valid_project_id_and_a_unique_name() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let data = app
        .data(&admin, CREATE, json!({ "input": { "name": " Warehouse ", "projectId": "example.com:acme-prod", "location": "EU" } }))
        .await;
    assert_eq!(
        data["createConnection"],
        json!({
            "id": data["createConnection"]["id"], "name": "Warehouse", "projectId": "example.com:acme-prod",
            "location": "EU", "owner": { "name": admin.sub }, "sharedWithEveryone": false, "canManage": true, "canUse": true
        })
    );
    let err = app
        .error(
            &admin,
            CREATE,
            json!({ "input": { "name": "Warehouse", "projectId": "acme-prod" } }),
        )
        .await;
    assert_eq!(err.code, "CONFLICT");
    for bad in ["Acme", "acme_prod", "1acme-prod", "acme-prod-"] {
        let err = app
            .error(
                &admin,
                CREATE,
                json!({ "input": { "name": format!("c-{bad}"), "projectId": bad } }),
            )
            .await;
        assert_eq!(
            (err.code.as_str(), err.field.as_deref()),
            ("BAD_USER_INPUT", Some("projectId")),
            "{bad}"
        );
    }
    let err = app
        .error(
            &admin,
            CREATE,
            json!({ "input": { "name": "x", "projectId": "acme-prod", "location": "eu west" } }),
        )
        .await;
    assert_eq!(err.field.as_deref(), Some("location"));
    assert_eq!(app.count_rows("connections").await, 1);
}

#[tokio::test]
async fn members_create_their_own_connections_only_when_the_organization_allows_it() {
    let app = spawn_app().await;
    let org = unique_org("o");
    let admin = Caller::admin(&org);
    let member = Caller::member(&org, "mia");
    // Off by default: a connection spends the server's BigQuery identity.
    let err = app
        .error(
            &member,
            CREATE,
            json!({ "input": { "name": "Another", "projectId": PROJECT } }),
        )
        .await;
    assert_eq!(err.code, "FORBIDDEN");
    allow_member_connections(&app, &admin, true).await;
    create_connection(&app, &member, "Mine").await;
    allow_member_connections(&app, &admin, false).await;
    let err = app
        .error(
            &member,
            CREATE,
            json!({ "input": { "name": "Another", "projectId": PROJECT } }),
        )
        .await;
    assert_eq!(err.code, "FORBIDDEN");
    create_connection(&app, &admin, "Admin's").await;
}

/// Lets the organization's members create connections, or stops them.
pub async fn allow_member_connections(app: &TestApp, admin: &Caller, allowed: bool) {
    app.data(
        admin,
        "mutation($on: Boolean!) { updateOrganization(input: { membersCanCreateConnections: $on }) { membersCanCreateConnections } }",
        json!({ "on": allowed }),
    )
    .await;
}

#[tokio::test]
async fn members_see_and_use_only_their_own_and_shared_connections() {
    let app = spawn_app().await;
    let org = unique_org("o");
    let admin = Caller::admin(&org);
    let mia = Caller::member(&org, "mia");
    let noa = Caller::member(&org, "noa");
    let mia_id = user_id(&app, &mia).await;
    user_id(&app, &noa).await;
    let private = create_connection(&app, &admin, "Private").await;
    let for_mia = create_connection(&app, &admin, "For Mia").await;
    let for_all = create_connection(&app, &admin, "For all").await;
    allow_member_connections(&app, &admin, true).await;
    let own = create_connection(&app, &noa, "Noa's").await;
    app.data(
        &admin,
        SHARE,
        json!({ "id": for_mia, "input": { "userIds": [mia_id] } }),
    )
    .await;
    app.data(
        &admin,
        SHARE,
        json!({ "id": for_all, "input": { "everyone": true } }),
    )
    .await;

    assert_eq!(
        names(&app, &admin).await,
        ["For Mia", "For all", "Noa's", "Private"]
    );
    assert_eq!(names(&app, &mia).await, ["For Mia", "For all"]);
    assert_eq!(names(&app, &noa).await, ["For all", "Noa's"]);

    // Noa manages her own, not the admin's; the admin manages everything.
    for id in [&private, &for_all] {
        for query in [
            (
                "mutation($id: ID!) { updateConnection(id: $id, input: { name: \"x\" }) { id } }",
                json!({ "id": id }),
            ),
            (
                "mutation($id: ID!) { deleteConnection(id: $id) }",
                json!({ "id": id }),
            ),
            (
                "mutation($id: ID!) { shareConnection(id: $id, input: { everyone: true }) { id } }",
                json!({ "id": id }),
            ),
            (
                "mutation($id: ID!) { testConnection(id: $id) { ok } }",
                json!({ "id": id }),
            ),
        ] {
            assert_eq!(
                app.error(&noa, query.0, query.1).await.code,
                "FORBIDDEN",
                "{}",
                query.0
            );
        }
    }
    app.data(
        &noa,
        "mutation($id: ID!) { updateConnection(id: $id, input: { name: \"Noa 2\" }) { id } }",
        json!({ "id": own }),
    )
    .await;
    app.data(
        &admin,
        "mutation($id: ID!) { updateConnection(id: $id, input: { name: \"Noa 3\" }) { id } }",
        json!({ "id": own }),
    )
    .await;
    let data = app
        .data(
            &noa,
            "query($id: ID!) { connection(id: $id) { name canManage canUse } }",
            json!({ "id": private }),
        )
        .await;
    assert_eq!(
        data["connection"],
        json!({ "name": "Private", "canManage": false, "canUse": false })
    );
}

#[tokio::test]
async fn sharing_replaces_the_list_of_users_and_refuses_unknown_ones() {
    let app = spawn_app().await;
    let org = unique_org("o");
    let admin = Caller::admin(&org);
    let a = user_id(&app, &Caller::member(&org, "a")).await;
    let b = user_id(&app, &Caller::member(&org, "b")).await;
    let id = create_connection(&app, &admin, "C").await;
    app.data(
        &admin,
        SHARE,
        json!({ "id": id, "input": { "userIds": [a] } }),
    )
    .await;
    let data = app
        .data(
            &admin,
            SHARE,
            json!({ "id": id, "input": { "userIds": [b] } }),
        )
        .await;
    assert_eq!(data["shareConnection"]["sharedWith"], json!([{ "id": b }]));
    let outsider = user_id(&app, &Caller::member(&unique_org("other"), "z")).await;
    let err = app
        .error(
            &admin,
            SHARE,
            json!({ "id": id, "input": { "userIds": [a, outsider] } }),
        )
        .await;
    assert_eq!(err.code, "NOT_FOUND");
    let data = app
        .data(
            &admin,
            "query($id: ID!) { connection(id: $id) { sharedWith { id } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data["connection"]["sharedWith"], json!([{ "id": b }]));
    let data = app
        .data(
            &admin,
            SHARE,
            json!({ "id": id, "input": { "userIds": [] } }),
        )
        .await;
    assert_eq!(data["shareConnection"]["sharedWith"], json!([]));
}

#[tokio::test]
async fn another_organizations_connections_do_not_exist_for_you() {
    let app = spawn_app().await;
    let theirs = create_connection(&app, &Caller::admin(&unique_org("a")), "Theirs").await;
    let eve = Caller::admin(&unique_org("b"));
    let data = app
        .data(
            &eve,
            "query($id: ID!) { connection(id: $id) { id } connections { id } }",
            json!({ "id": theirs }),
        )
        .await;
    assert_eq!(data, json!({ "connection": null, "connections": [] }));
    for query in [
        "mutation($id: ID!) { updateConnection(id: $id, input: { name: \"x\" }) { id } }",
        "mutation($id: ID!) { deleteConnection(id: $id) }",
        "mutation($id: ID!) { shareConnection(id: $id, input: { everyone: true }) { id } }",
    ] {
        assert_eq!(
            app.error(&eve, query, json!({ "id": theirs })).await.code,
            "NOT_FOUND",
            "{query}"
        );
    }
}

#[tokio::test]
async fn big_query_setup_lists_the_permissions_and_no_account_without_service_account_credentials()
{
    let app = spawn_app().await;
    let data = app
        .data(
            &Caller::member(&unique_org("o"), "m"),
            "{ bigQuerySetup { serviceAccountEmail requiredPermissions steps } }",
            json!({}),
        )
        .await;
    assert_eq!(data["bigQuerySetup"]["serviceAccountEmail"], Value::Null);
    assert_eq!(
        data["bigQuerySetup"]["requiredPermissions"],
        json!([
            "bigquery.datasets.get",
            "bigquery.jobs.create",
            "bigquery.tables.get",
            "bigquery.tables.getData"
        ])
    );
    assert_eq!(data["bigQuerySetup"]["steps"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn big_query_setup_shows_the_service_account_of_the_credentials_file() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeGoogle::start().await;
    let key = fake.write_key_file(
        dir.path(),
        &fake.service_account_key("okr-pulse@acme-prod.iam.gserviceaccount.com"),
    );
    let app = spawn_app_with(|config| {
        config.bigquery.emulator_host = None;
        config.bigquery.google_application_credentials = Some(key.clone());
    })
    .await;
    let data = app
        .data(
            &Caller::admin(&unique_org("o")),
            "{ bigQuerySetup { serviceAccountEmail steps } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["bigQuerySetup"]["serviceAccountEmail"],
        "okr-pulse@acme-prod.iam.gserviceaccount.com"
    );
    assert!(
        data["bigQuerySetup"]["steps"][1]
            .as_str()
            .unwrap()
            .contains("okr-pulse@acme-prod.iam.gserviceaccount.com")
    );
}

#[tokio::test]
async fn test_connection_dry_runs_in_the_project_and_remembers_the_outcome() {
    let (app, mut emulator) = spawn_app_with_emulator().await;
    let admin = Caller::admin(&unique_org("o"));
    let id = create_connection(&app, &admin, "C").await;
    let data = app
        .data(
            &admin,
            "mutation($id: ID!) { testConnection(id: $id) { ok message checkedAt } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data["testConnection"]["ok"], true, "{data:#}");
    emulator.stop().await;
    let data = app
        .data(
            &admin,
            "mutation($id: ID!) { testConnection(id: $id) { ok message } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data["testConnection"]["ok"], false);
    assert!(
        data["testConnection"]["message"]
            .as_str()
            .unwrap()
            .starts_with("BigQuery:")
    );
    let data = app
        .data(
            &admin,
            "query($id: ID!) { connection(id: $id) { lastTest { ok } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data["connection"]["lastTest"]["ok"], false);
}
