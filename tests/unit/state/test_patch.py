import pytest
from pydantic import ValidationError

from state.errors import PatchError
from state.patch import (
    PATCH_ADAPTER,
    Add,
    Append,
    Increment,
    Remove,
    Replace,
    apply_patch,
)


def doc():
    return {"slots": {"a": "1"}, "count": 2, "items": [1, 2], "flag": False}


def test_operations_apply_in_order_on_a_copy():
    original = doc()
    out = apply_patch(
        original,
        [
            Add(path="/slots/b", value="2"),
            Replace(path="/flag", value=True),
            Increment(path="/count", value=3),
            Append(path="/items", value=3),
            Add(path="/items/0", value=0),
            Remove(path="/slots/a"),
        ],
    )
    assert out == {"slots": {"b": "2"}, "count": 5, "items": [0, 1, 2, 3], "flag": True}
    assert original == doc()


@pytest.mark.parametrize(
    "op, path",
    [
        (Replace(path="/missing", value=1), "/missing"),
        (Remove(path="/slots/zz"), "/slots/zz"),
        (Increment(path="/flag"), "/flag"),
        (Append(path="/count", value=1), "/count"),
        (Add(path="/nope/deeper", value=1), "/nope/deeper"),
    ],
)
def test_invalid_operations_name_the_path(op, path):
    with pytest.raises(PatchError) as err:
        apply_patch(doc(), [op])
    assert err.value.path == path


def test_json_pointer_escapes():
    out = apply_patch({"slots": {}}, [Add(path="/slots/a~1b~0c", value="x")])
    assert out == {"slots": {"a/b~c": "x"}}


def test_discriminated_union_parses_and_rejects():
    ops = PATCH_ADAPTER.validate_python([{"op": "add", "path": "/x", "value": 1}, {"op": "remove", "path": "/y"}])
    assert isinstance(ops[0], Add) and isinstance(ops[1], Remove)
    with pytest.raises(ValidationError):
        PATCH_ADAPTER.validate_python([{"op": "move", "path": "/x"}])
    with pytest.raises(ValidationError):
        PATCH_ADAPTER.validate_python([{"op": "add", "path": "no-slash", "value": 1}])
