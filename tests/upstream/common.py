"""What every upstream test module shares."""

from unittest import mock


class ConfigTests:
    """transformers' ConfigTester checks over `self.config_tester`, its `check_config_arguments_init` as a test of
    its own: it needs `config_common_kwargs` from tests/utils/test_configuration_utils.py, which transformers' sdist
    lacks (the placeholder skips that test alone, not every config check)."""

    def test_config(self):
        with mock.patch.object(self.config_tester, "check_config_arguments_init", lambda: None):
            self.config_tester.run_common_tests()

    def test_config_arguments_init(self):
        self.config_tester.check_config_arguments_init()
