def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_login_and_me(admin, client):
    response = client.get("/api/auth/me/", headers=admin.headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["username"] == "admin"
