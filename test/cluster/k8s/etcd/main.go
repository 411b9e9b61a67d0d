// Command etcd is the etcd server at the version the pinned Kubernetes release requires
// (the same go.etcd.io/etcd/server/v3 that its go.mod selects), so the tests never use an
// older distribution etcd below Kubernetes' supported floor.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
