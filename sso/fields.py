"""A model field that keeps secrets encrypted at rest (see `sso.crypto`)."""

from django.core.exceptions import FieldError, ValidationError
from django.db import models
from django.db.models.lookups import IsNull

from . import crypto


class Secreto(str):
    """A decrypted secret: a plain `str` whose repr hides it from logs and error pages."""

    __slots__ = ()

    def __repr__(self):
        return "'********'"


class EncryptedTextField(models.TextField):
    """Text stored as `v1:<key id>:<base64>`, AES-256-GCM bound to its model and column.

    Only `isnull` lookups work: anything else would compare ciphertexts. Serialization
    (`dumpdata`) writes the ciphertext, never the clear value; loading a fixture accepts it back
    if it authenticates, and refuses it otherwise.
    """

    description = "Encrypted text"

    def associated_data(self) -> str:
        return f"{self.model._meta.label_lower}.{self.column}"

    def get_lookup(self, lookup_name):
        if lookup_name == "isnull":
            return IsNull
        raise FieldError(f"{self.model.__name__}.{self.name} is encrypted: only isnull lookups.")

    def get_transform(self, lookup_name):
        raise FieldError(f"{self.model.__name__}.{self.name} is encrypted: no transforms.")

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return Secreto(crypto.decrypt(value, self.associated_data()))

    def to_python(self, value):
        if value is None or isinstance(value, Secreto):
            return value
        value = str(value)
        if crypto.key_id_of(value) is not None:
            # A serialized ciphertext (fixtures): its clear value if it authenticates. One that
            # does not (tampered, unknown key, another column) fails closed: never taken for a
            # clear value, which would silently replace the secret with the ciphertext.
            try:
                return Secreto(crypto.decrypt(value, self.associated_data()))
            except crypto.DecryptionError as exc:
                raise ValidationError(
                    "An encrypted value that does not decrypt here.", code="undecryptable"
                ) from exc
        return Secreto(value)

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        return crypto.encrypt(
            value if isinstance(value, str) else str(value), self.associated_data()
        )

    def value_to_string(self, obj):
        value = self.value_from_object(obj)
        if value is None:
            return None
        return crypto.encrypt(str(value), self.associated_data())


def encrypted_fields():
    """Every (model, field) pair stored with EncryptedTextField, across all apps."""
    from django.apps import apps

    for model in apps.get_models():
        if model._meta.proxy:
            continue
        for field in model._meta.local_concrete_fields:
            if isinstance(field, EncryptedTextField):
                yield model, field


def reencrypt_all(batch_size: int = 500, despues_de_lote=None) -> dict[str, int]:
    """Re-encrypt under the active key every stored secret written under an older one.

    Works on the raw column so no clear value is kept on model instances; each row is
    updated only if it still holds the value read, so a concurrent edit is never overwritten.
    Each batch is its own short transaction, so readers never wait and the site stays up;
    `despues_de_lote()`, if given, is called after each batch commits.
    """
    from django.db import connection, transaction

    active = crypto.keyring().active
    counts: dict[str, int] = {}
    for model, field in encrypted_fields():
        table = connection.ops.quote_name(model._meta.db_table)
        column = connection.ops.quote_name(field.column)
        pk = connection.ops.quote_name(model._meta.pk.column)
        ad = field.associated_data()
        done = 0
        last = None
        while True:
            with connection.cursor() as cursor:
                after = last is not None  # not `if last`: a primary key may be 0
                where = f"WHERE {column} IS NOT NULL" + (f" AND {pk} > %s" if after else "")
                cursor.execute(
                    f"SELECT {pk}, {column} FROM {table} {where} ORDER BY {pk} LIMIT %s",  # noqa: S608
                    [last, batch_size] if after else [batch_size],
                )
                rows = cursor.fetchall()
            if not rows:
                break
            with transaction.atomic(), connection.cursor() as cursor:
                for row_pk, stored in rows:
                    if crypto.key_id_of(stored) == active:
                        continue
                    fresh = crypto.encrypt(crypto.decrypt(stored, ad), ad)
                    cursor.execute(
                        f"UPDATE {table} SET {column} = %s WHERE {pk} = %s AND {column} = %s",  # noqa: S608
                        [fresh, row_pk, stored],
                    )
                    done += cursor.rowcount
            if despues_de_lote is not None:
                despues_de_lote()
            last = rows[-1][0]
        counts[model._meta.label + "." + field.name] = done
    return counts
