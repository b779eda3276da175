"""The install's own key (`LOCKGATE_API_KEY`) across restarts, on the real SQLite stores:
rotating it retires the previous one, and tenant `default` is a real tenant whose keys can be
listed and revoked like anyone's."""

from __future__ import annotations

from pathlib import Path

from lockgate.bootstrap import Container, build, first_start_key
from lockgate.settings import Settings
from lockgate.stores.embedded.keys import SqliteKeyStore
from lockgate.tenants.keys import Tenant, hash_key

OLD = "lg-old-install-key-0123456789"
NEW = "lg-new-install-key-9876543210"


def start(data: Path, api_key: str | None) -> Container:
    return build(Settings(api_key=api_key, data_dir=data))


def works(container: Container, key: str) -> bool:
    return container.keys.tenant_for(hash_key(key)) == Tenant("default")


def test_a_rotated_key_stops_working(tmp_path: Path) -> None:
    first = start(tmp_path, OLD)
    assert works(first, OLD)
    second = start(tmp_path, NEW)
    assert works(second, NEW)
    assert not works(second, OLD)
    listed = second.tenants.list_keys("default")
    assert [(k.name, k.revoked_at is not None) for k in listed] == [
        ("LOCKGATE_API_KEY", True),
        ("LOCKGATE_API_KEY", False),
    ]


def test_restarting_with_the_same_key_keeps_it(tmp_path: Path) -> None:
    start(tmp_path, OLD)
    again = start(tmp_path, OLD)
    assert works(again, OLD)
    assert len(again.tenants.list_keys("default")) == 1


def test_the_default_tenant_can_list_and_revoke_its_keys(tmp_path: Path) -> None:
    container = start(tmp_path, OLD)
    assert container.tenants.get_tenant("default").id == "default"
    issued = container.tenants.create_key("default", name="ci")
    assert works(container, issued.key)
    (install,) = [k for k in container.tenants.list_keys("default") if k.name != "ci"]
    container.tenants.revoke_key(install.key_id)
    assert not works(container, OLD)
    assert works(container, issued.key)


def test_an_install_key_from_before_key_names_is_retired_on_rotation(tmp_path: Path) -> None:
    """A database written by an earlier release: the install key is a nameless key of a tenant
    `default` that has no record."""
    legacy = SqliteKeyStore(tmp_path / "lockgate.db")
    legacy.add(hash_key(OLD), Tenant("default"))
    legacy.close()
    container = start(tmp_path, NEW)
    assert works(container, NEW) and not works(container, OLD)


def test_an_unchanged_key_from_before_key_names_is_kept_and_named(tmp_path: Path) -> None:
    legacy = SqliteKeyStore(tmp_path / "lockgate.db")
    legacy.add(hash_key(OLD), Tenant("default"))
    legacy.close()
    start(tmp_path, OLD)
    container = start(tmp_path, NEW)  # a later rotation still finds it
    assert works(container, NEW) and not works(container, OLD)


def test_keys_created_for_default_are_not_mistaken_for_the_install_key(tmp_path: Path) -> None:
    container = start(tmp_path, OLD)
    issued = container.tenants.create_key("default")
    rotated = start(tmp_path, NEW)
    assert works(rotated, issued.key) and not works(rotated, OLD)


def test_a_first_start_key_is_a_listed_key_of_default(tmp_path: Path) -> None:
    container = start(tmp_path, None)
    key = first_start_key(container)
    assert key is not None and works(container, key)
    assert [k.name for k in container.tenants.list_keys("default")] == ["first start"]
