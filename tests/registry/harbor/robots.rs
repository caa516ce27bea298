//! Pull credentials through the Harbor adapter: a pull-only robot account on the chosen
//! projects, checked in the simulator's state and by what its token realm grants.

use std::time::{Duration, SystemTime};

use flotilla::adapters::{
    ErrorClass,
    registry::{PullScope, RegistryProvider},
};

use flotilla_test_support::sim::harbor::RobotPermission;

use super::{HarborSim, provider, setup, target};

/// What the simulator's token realm grants `username` on `repository` for pull and push.
async fn granted(sim: &HarborSim, username: &str, password: &str, repository: &str) -> Vec<String> {
    let url = format!(
        "{}/service/token?service=harbor-registry&scope=repository:{repository}:pull,push",
        sim.endpoint()
    );
    let response = reqwest::Client::new()
        .get(url)
        .basic_auth(username, Some(password))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let token = sim.tokens().pop().unwrap();
    assert_eq!(token.subject, username);
    token.access[0].1.clone()
}

#[tokio::test]
async fn a_pull_robot_may_pull_only_from_its_projects_until_revoked() {
    let (sim, client) = setup().await;
    for p in ["team-a", "team-b", "team-c"] {
        sim.create_project(p, false);
    }
    let before = SystemTime::now();
    let issued = client
        .issue_pull_credential(&PullScope {
            namespaces: vec!["team-a".into()],
            name: "ps-1".into(),
            lifetime: Duration::from_secs(30 * 86_400 + 3600),
        })
        .await
        .unwrap();
    assert_eq!(issued.username, "robot$team-a+ps-1");
    assert_eq!(issued.server, sim.endpoint().trim_start_matches("http://"));
    assert!(!format!("{issued:?}").contains(issued.password.as_str()));

    let robots = sim.robots();
    assert_eq!(robots.len(), 1);
    let robot = &robots[0];
    assert_eq!(issued.vendor_id, Some(robot.id.to_string()));
    assert_eq!((robot.level.as_str(), robot.duration_days), ("project", 30));
    assert_eq!(
        robot.permissions,
        [RobotPermission {
            namespace: "team-a".into(),
            access: vec![("repository".into(), "pull".into())],
        }]
    );
    let expires = issued.expires.unwrap();
    let thirty_days = before + Duration::from_secs(30 * 86_400);
    assert!(
        expires >= thirty_days - Duration::from_secs(5)
            && expires <= thirty_days + Duration::from_secs(60)
    );

    // The credential works, and is pull-only on team-a: the realm grants nothing more.
    let robot_client = provider()
        .open(target(&sim, &issued.username, &issued.password))
        .unwrap();
    robot_client.login().await.unwrap();
    assert_eq!(
        granted(&sim, &issued.username, &issued.password, "team-a/app").await,
        ["pull"]
    );
    assert!(
        granted(&sim, &issued.username, &issued.password, "team-b/app")
            .await
            .is_empty()
    );
    let (admin, admin_password) = sim.admin();
    assert_eq!(
        granted(&sim, &admin, &admin_password, "team-b/app").await,
        ["pull", "push"]
    );

    // Several projects make a system-level robot, still pull-only, on exactly those.
    let two = client
        .issue_pull_credential(&PullScope {
            namespaces: vec!["team-a".into(), "team-c".into()],
            name: "ps-2".into(),
            lifetime: Duration::from_secs(3600),
        })
        .await
        .unwrap();
    assert_eq!(two.username, "robot$ps-2");
    let robot = sim
        .robots()
        .into_iter()
        .find(|r| r.name == "robot$ps-2")
        .unwrap();
    assert_eq!((robot.level.as_str(), robot.duration_days), ("system", 1));
    let namespaces: Vec<&str> = robot
        .permissions
        .iter()
        .map(|p| p.namespace.as_str())
        .collect();
    assert_eq!(namespaces, ["team-a", "team-c"]);
    assert!(
        robot
            .permissions
            .iter()
            .all(|p| p.access == [("repository".to_string(), "pull".to_string())])
    );
    assert_eq!(
        granted(&sim, &two.username, &two.password, "team-c/x").await,
        ["pull"]
    );
    assert!(
        granted(&sim, &two.username, &two.password, "team-b/x")
            .await
            .is_empty()
    );

    // Expired: refused.
    sim.set_robot_expiry(robot.id, 1);
    let expired = provider()
        .open(target(&sim, &two.username, &two.password))
        .unwrap();
    assert_eq!(
        expired.login().await.unwrap_err().class,
        ErrorClass::CredentialsInvalid
    );

    // Issued again under the same name (the first answer lost, say): the old robot is replaced,
    // its secret stops working, and there is still one robot of that name.
    let again = client
        .issue_pull_credential(&PullScope {
            namespaces: vec!["team-c".into(), "team-a".into()],
            name: "ps-2".into(),
            lifetime: Duration::from_secs(3600),
        })
        .await
        .unwrap();
    assert_eq!(again.username, "robot$ps-2");
    assert_ne!(
        again.vendor_id.as_deref(),
        Some(robot.id.to_string().as_str())
    );
    let named: Vec<_> = sim
        .robots()
        .into_iter()
        .filter(|r| r.name == "robot$ps-2")
        .collect();
    assert_eq!(named.len(), 1);
    assert_eq!(
        granted(&sim, &again.username, &again.password, "team-c/x").await,
        ["pull"]
    );
    assert_eq!(sim.control.count("POST /robots"), 4);

    // Revoked: gone from Harbor, and the credential no longer logs in; revoking twice is fine.
    let id = issued.vendor_id.unwrap();
    client.revoke_pull_credential(&id).await.unwrap();
    assert!(sim.robots().iter().all(|r| r.id.to_string() != id));
    let err = robot_client.login().await.unwrap_err();
    assert_eq!(err.class, ErrorClass::CredentialsInvalid);
    client.revoke_pull_credential(&id).await.unwrap();
    assert_eq!(sim.control.count("DELETE /robots/{id}"), 3);
}
