module github.com/netmesh/net/sdk-go

go 1.22
