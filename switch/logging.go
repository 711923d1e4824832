package switching

import (
	"fmt"
	"github.com/cardswitch/cardswitch/internal/cardno"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewLogger builds the daemon's logger: JSON in production, console in the
// demo. Nothing secret is ever handed to it: card numbers go through
// cardno.Mask, and PIN blocks, track data and keys are never logged at all.
func NewLogger(c LogConfig) (*zap.Logger, error) {
	var level zapcore.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", c.Level, err)
	}
	var zc zap.Config
	if c.Format == "console" {
		zc = zap.NewDevelopmentConfig()
		zc.DisableStacktrace = true
	} else {
		zc = zap.NewProductionConfig()
	}
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.EncoderConfig.TimeKey = "ts"
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return zc.Build()
}

// panField is a zap field with a masked card number: the only form of a
// card number that may reach a log.
func panField(pan string) zap.Field { return zap.String("card", cardno.Mask(pan)) }
