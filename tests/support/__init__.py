"""Test support code shared by the suites: reference implementations and builders."""
