"""storage.keys: the key format and what is kept of a key."""

from __future__ import annotations

from storage.keys import PREFIX, hash_key, new_key


def test_keys_embed_their_id_and_only_the_hash_is_kept() -> None:
    key_id, key = new_key()
    prefix, embedded, secret = key.split("_", 2)
    assert (prefix, embedded) == (PREFIX, key_id) and len(secret) >= 40
    assert hash_key(key) != key and len(hash_key(key)) == 64
    assert new_key()[1] != key
