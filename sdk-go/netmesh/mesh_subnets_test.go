package netmesh_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/netmesh/net/sdk-go/netmesh"
)

var subnetPolicy = []netmesh.SubnetRule{
	{Prefix: "zone:", Level: 0, Values: map[string]uint8{"a": 3}},
	{Prefix: "site:", Level: 1, Values: map[string]uint8{"x": 7, "y": 8}},
}

func subnetMesh(t *testing.T, subnet string) *netmesh.Mesh {
	m := fastMesh(t, func(c *netmesh.MeshConfig) {
		c.Subnet = subnet
		c.SubnetPolicy = subnetPolicy
	})
	must(0, m.Start())
	return m
}

func peerSubnet(m *netmesh.Mesh, id uint64) string {
	p, ok := peerOf(m, id)
	if !ok || p.Subnet == nil {
		return ""
	}
	return *p.Subnet
}

// A SubnetLocal channel admits a subscriber in the publisher's subnet
// (given by the policy over its tags) and refuses one in another subnet
// (given explicitly); the peers JSON and Channels() show the subnets.
func TestMeshSubnets(t *testing.T) {
	pub := subnetMesh(t, "3.7")
	mate := subnetMesh(t, "")
	other := subnetMesh(t, "3.8")
	must(0, pub.Announce(netmesh.Capabilities{}))
	must(0, mate.Announce(netmesh.Capabilities{Tags: []string{"zone:a", "site:x"}}))
	must(0, other.Announce(netmesh.Capabilities{}))
	linkTo(t, mate, pub)
	linkTo(t, other, pub)
	idm, ido, idp := must(mate.NodeID()), must(other.NodeID()), must(pub.NodeID())
	waitFor(t, "the subnets learned", func() bool {
		return peerSubnet(pub, idm) == "3.7" && peerSubnet(pub, ido) == "3.8"
	})
	if s := must(mate.Channels())["subnet"]; s != "3.7" {
		t.Fatalf("own subnet from the policy: %v", s)
	}
	must(pub.RegisterChannel("local", netmesh.ChannelConfig{Visibility: "subnet_local"}))
	if err := mate.Subscribe(ctx5(t), idp, "local", nil); err != nil {
		t.Fatal(err)
	}
	if err := other.Subscribe(ctx5(t), idp, "local", nil); !errors.Is(err, netmesh.ErrChannelUnauthorized) {
		t.Fatalf("across subnets: %v", err)
	}
	report := must(pub.Publish("local", [][]byte{[]byte("inside")}, true))
	if report.Delivered != 1 {
		t.Fatalf("%+v", report)
	}
	expectEvent(t, mate, idp, "inside", "local")

	// An exported channel reaches its export target only.
	must(pub.RegisterChannel("out", netmesh.ChannelConfig{Visibility: "exported", ExportTo: []string{"3.8"}}))
	if err := other.Subscribe(ctx5(t), idp, "out", nil); err != nil {
		t.Fatal(err)
	}
	if err := mate.Subscribe(ctx5(t), idp, "out", nil); !errors.Is(err, netmesh.ErrChannelUnauthorized) {
		t.Fatalf("not exported to 3.7: %v", err)
	}
	must(pub.Publish("out", [][]byte{[]byte("exported")}, true))
	expectEvent(t, other, idp, "exported", "out")
	if _, err := pub.RegisterChannel("bad", netmesh.ChannelConfig{ExportTo: []string{"9.9.9.9.9"}}); !errors.Is(err, netmesh.ErrChannelConfig) {
		t.Fatalf("bad export: %v", err)
	}

	for _, cfg := range []netmesh.MeshConfig{
		{Subnet: "1.2.3.4.5"},
		{SubnetPolicy: []netmesh.SubnetRule{{Prefix: "x:", Level: 4, Values: map[string]uint8{"a": 1}}}},
	} {
		if _, err := netmesh.NewMesh(cfg); !errors.Is(err, netmesh.ErrMeshConfig) || !strings.Contains(err.Error(), "subnet") {
			t.Fatalf("%+v: %v", cfg, err)
		}
	}
}
