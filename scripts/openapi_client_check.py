"""Drives a live gateway through the Python client that openapi-python-client generated from
openapi/scimgate.yaml (importable as `scimgate_client`): creates, lists and patches a user, then
reads the event feed. Run by scripts/openapi-client.sh, which sets the environment below.

Environment: SCIMGATE_BASE (http://host:port), SCIMGATE_ORG, SCIMGATE_TENANT_TOKEN,
SCIMGATE_OPERATOR_TOKEN.
"""

import os
import sys

from scimgate_client import AuthenticatedClient
from scimgate_client.api.users import create_user, get_user, list_users, patch_user
from scimgate_client.api.webhooks import list_events
from scimgate_client.models import (
    ListEventsResponse200,
    MultiValue,
    PatchOp,
    PatchOperation,
    User,
    UserList,
    UserRequest,
)
from scimgate_client.models.user_schemas_item import UserSchemasItem

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def check(condition: bool, what: str) -> None:
    if not condition:
        print(f"openapi-client: FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def main() -> None:
    base, org = os.environ["SCIMGATE_BASE"], os.environ["SCIMGATE_ORG"]
    tenant = AuthenticatedClient(base_url=base, token=os.environ["SCIMGATE_TENANT_TOKEN"], raise_on_unexpected_status=True)
    operator = AuthenticatedClient(base_url=base, token=os.environ["SCIMGATE_OPERATOR_TOKEN"], raise_on_unexpected_status=True)

    # Create: the typed request body, a typed User back.
    request = UserRequest(
        user_name="ann@example.com",
        schemas=[UserSchemasItem("urn:ietf:params:scim:schemas:core:2.0:User")],
        display_name="Ann",
        active=True,
        emails=[MultiValue(value="ann@example.com", type_="work", primary=True)],
    )
    created = create_user.sync_detailed(org, client=tenant, body=request)
    check(created.status_code == 201, f"create: {created.status_code} {created.content!r}")
    user = created.parsed
    check(isinstance(user, User) and isinstance(user.id, str), f"create answered {user!r}")
    check(user.user_name == "ann@example.com", f"userName {user.user_name!r}")

    # List with a filter: ListResponse.Resources parses to Users.
    listed = list_users.sync(org, client=tenant, filter_='userName eq "ann@example.com"')
    check(isinstance(listed, UserList), f"list answered {listed!r}")
    check(listed.total_results == 1 and len(listed.resources) == 1, f"list: {listed!r}")
    check(isinstance(listed.resources[0], User) and listed.resources[0].id == user.id, f"listed {listed.resources!r}")
    everyone = list_users.sync(org, client=tenant, count=10)
    check(isinstance(everyone, UserList) and [u.id for u in everyone.resources] == [user.id], f"{everyone!r}")

    # Patch: deactivate and rename, then read back.
    body = PatchOp(
        schemas=[PATCH_OP],
        operations=[
            PatchOperation(op="replace", path="active", value=False),
            PatchOperation(op="Replace", path="displayName", value="Ann B."),
        ],
    )
    patched = patch_user.sync(org, user.id, client=tenant, body=body)
    check(isinstance(patched, User) and patched.active is False and patched.display_name == "Ann B.", f"patched {patched!r}")
    read = get_user.sync(org, user.id, client=tenant)
    check(isinstance(read, User) and read.active is False, f"read back {read!r}")

    # The event feed: the creation and the change, in order, through the admin API.
    feed = list_events.sync(org, client=operator, after=0, limit=100)
    check(isinstance(feed, ListEventsResponse200), f"feed answered {feed!r}")
    types = [event.type_.value for event in feed.events]
    check(types[0] == "user.created", f"event types {types}")
    check(any(t in ("user.updated", "user.deactivated") for t in types[1:]), f"the patch is an event: {types}")
    check([e.seq for e in feed.events] == sorted(e.seq for e in feed.events), "events in sequence order")
    check(feed.next_cursor == feed.events[-1].seq, f"next_cursor {feed.next_cursor}")
    later = list_events.sync(org, client=operator, after=feed.next_cursor)
    check(isinstance(later, ListEventsResponse200) and later.events == [], f"after the last: {later!r}")
    print(f"openapi-client: created, listed and patched user {user.id}; read {len(feed.events)} events")


if __name__ == "__main__":
    main()
