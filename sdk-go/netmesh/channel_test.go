package netmesh_test

import (
	"errors"
	"testing"

	"github.com/netmesh/net/sdk-go/netmesh"
)

func TestChannelVectors(t *testing.T) {
	var v channelVectors
	loadVectors(t, "channels.json", &v)
	for _, h := range v.Hashes {
		got, err := netmesh.ChannelHash(h.Name)
		if err != nil || uint64(got) != num(t, h.Hash) {
			t.Errorf("ChannelHash(%q) = %#04x (%v), want %s", h.Name, got, err, h.Hash)
		}
		if err := netmesh.ValidateChannel(h.Name); err != nil {
			t.Errorf("ValidateChannel(%q): %v", h.Name, err)
		}
	}
	for _, c := range v.NameValidation {
		err := netmesh.ValidateChannel(c.Name)
		_, hashErr := netmesh.ChannelHash(c.Name)
		if c.Valid {
			if err != nil || hashErr != nil {
				t.Errorf("%s: valid name refused: %v / %v", c.Label, err, hashErr)
			}
			continue
		}
		if !errors.Is(err, netmesh.ErrChannelInvalidName) || !errors.Is(hashErr, netmesh.ErrChannelInvalidName) {
			t.Errorf("%s (%q): got %v / %v, want ErrChannelInvalidName", c.Label, c.Name, err, hashErr)
			continue
		}
		var e *netmesh.Error
		if !errors.As(err, &e) || e.Message == "" || e.Op != "net_channel_validate" {
			t.Errorf("%s: error lacks libnet's detail: %#v", c.Label, err)
		}
	}
	expectIs(t, netmesh.ValidateChannel("a\xffb"), netmesh.ErrInvalidArgument)
}
