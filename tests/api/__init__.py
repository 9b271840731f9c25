import pytest

# Failed checks in the shared helpers should explain themselves like those in the tests.
pytest.register_assert_rewrite("tests.api.helpers")
