//go:build tools

package buildmon

// Dependencies the components are being built on; listed so that go.mod keeps them while the
// code that imports them is written.
import (
	_ "github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	_ "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	_ "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	_ "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/ptracetest"
	_ "github.com/shirou/gopsutil/v4/cpu"
	_ "github.com/shirou/gopsutil/v4/disk"
	_ "github.com/shirou/gopsutil/v4/mem"
	_ "github.com/shirou/gopsutil/v4/net"
	_ "go.opentelemetry.io/collector/component/componentstatus"
	_ "go.opentelemetry.io/collector/component/componenttest"
	_ "go.opentelemetry.io/collector/config/configauth"
	_ "go.opentelemetry.io/collector/config/confighttp"
	_ "go.opentelemetry.io/collector/config/configopaque"
	_ "go.opentelemetry.io/collector/config/configretry"
	_ "go.opentelemetry.io/collector/config/configtls"
	_ "go.opentelemetry.io/collector/confmap/xconfmap"
	_ "go.opentelemetry.io/collector/consumer/consumertest"
	_ "go.opentelemetry.io/collector/exporter/exporterhelper"
	_ "go.opentelemetry.io/collector/exporter/exportertest"
	_ "go.opentelemetry.io/collector/extension/xextension/storage"
	_ "go.opentelemetry.io/collector/processor/processorhelper"
	_ "go.opentelemetry.io/collector/processor/processortest"
	_ "go.opentelemetry.io/collector/receiver/receiverhelper"
	_ "go.opentelemetry.io/collector/receiver/receivertest"
	_ "go.opentelemetry.io/collector/scraper/scraperhelper"
	_ "go.uber.org/goleak"
)
