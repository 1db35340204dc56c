"""The package imports and reports its version; layer constants are what the RFCs say."""

from vrrpd import __version__
from vrrpd.cli import main
from vrrpd.proto.constants import VRRP_GROUP4, VRRP_GROUP6, vmac


def test_version_flag(capsys):
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_vmac_follows_rfc5798_section_7_3():
    assert vmac(51, 4) == "00:00:5e:00:01:33"
    assert vmac(1, 6) == "00:00:5e:00:02:01"
    assert str(VRRP_GROUP4) == "224.0.0.18"
    assert str(VRRP_GROUP6) == "ff02::12"
