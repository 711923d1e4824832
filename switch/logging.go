package switching

import (
	"fmt"
	"os"
	"time"

	"github.com/cardswitch/cardswitch/internal/logmask"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewLogger builds the daemon's logger: JSON in production, console in the
// demo, writing to stderr. Nothing secret is handed to it on purpose: card
// numbers go through cardno.Mask, and PIN blocks, track data and keys are
// never logged at all. Behind that, every line passes internal/logmask,
// which masks any digit run of card-number length whatever its source (a
// request path, an error's text), so a card number cannot reach the log
// whole by construction (docs/security.md).
func NewLogger(c LogConfig) (*zap.Logger, error) {
	log, _, err := newLoggerTo(c, zapcore.Lock(os.Stderr))
	return log, err
}

// NewLoggerLevel is NewLogger that also returns the logger's level, which
// a reload changes (Switch.SetLogLevel).
func NewLoggerLevel(c LogConfig) (*zap.Logger, zap.AtomicLevel, error) {
	return newLoggerTo(c, zapcore.Lock(os.Stderr))
}

func newLoggerTo(c LogConfig, out zapcore.WriteSyncer) (*zap.Logger, zap.AtomicLevel, error) {
	var level zapcore.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, zap.AtomicLevel{}, fmt.Errorf("log level %q: %w", c.Level, err)
	}
	atomicLevel := zap.NewAtomicLevelAt(level)
	var (
		ec  zapcore.EncoderConfig
		enc zapcore.Encoder
	)
	console := c.Format == "console"
	if console {
		ec = zap.NewDevelopmentEncoderConfig()
	} else {
		ec = zap.NewProductionEncoderConfig()
	}
	ec.TimeKey = "ts"
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	if console {
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		enc = zapcore.NewJSONEncoder(ec)
	}
	core := zapcore.NewCore(logmask.Encoder(enc), out, atomicLevel)
	opts := []zap.Option{zap.ErrorOutput(zapcore.Lock(os.Stderr)), zap.AddCaller()}
	if !console {
		// As zap's production configuration: at most 100 identical lines a
		// second, then one in 100; stack traces on errors.
		core = zapcore.NewSamplerWithOptions(core, time.Second, 100, 100)
		opts = append(opts, zap.AddStacktrace(zapcore.ErrorLevel))
	}
	return zap.New(core, opts...), atomicLevel, nil
}
