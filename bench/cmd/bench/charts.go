package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// writeCharts draws idle.png (round-trip time against idle clients, one line
// per server), throughput.png and cpu.png (requests/s and server CPU per
// echo, bars with the rounds' range, a panel per core setting) and
// openloop.png (latency percentiles against the offered rate).
func writeCharts(dir string, r *Results) ([]string, error) {
	// Skipped servers keep their place, so a server has the same colour
	// in every run of the same command.
	var servers []*target
	for _, t := range r.Servers {
		if t.Skip == "" {
			servers = append(servers, t)
		} else {
			servers = append(servers, nil)
		}
	}
	var files []string
	if len(r.Idle) > 0 {
		name := filepath.Join(dir, "idle.png")
		p50, p99 := idlePlot(r, servers, "p50", func(x IdleResult) float64 { return x.P50.Median }),
			idlePlot(r, servers, "p99", func(x IdleResult) float64 { return x.P99.Median })
		if err := savePNG(name, [][]*plot.Plot{{p50, p99}}, 10*vg.Inch, 4*vg.Inch); err != nil {
			return nil, err
		}
		files = append(files, name)
	}
	if len(r.Throughput) > 0 {
		name := filepath.Join(dir, "throughput.png")
		rps := func(x ThroughputResult) spread { return scaled(x.RPS, 1e-3) }
		cpu := func(x ThroughputResult) spread { return x.CPUPerEcho }
		row := []*plot.Plot{
			cellPlot(r, servers, "one core", "Throughput, server on one core", "thousand requests/s", rps),
			cellPlot(r, servers, "default", "Throughput, default settings", "thousand requests/s", rps)}
		if err := savePNG(name, [][]*plot.Plot{row}, 12*vg.Inch, 4*vg.Inch); err != nil {
			return nil, err
		}
		files = append(files, name)
		name = filepath.Join(dir, "cpu.png")
		row = []*plot.Plot{
			cellPlot(r, servers, "one core", "Server CPU per echo, one core (lower is better)", "µs of CPU per echo", cpu),
			cellPlot(r, servers, "default", "Server CPU per echo, default settings", "µs of CPU per echo", cpu)}
		if err := savePNG(name, [][]*plot.Plot{row}, 12*vg.Inch, 4*vg.Inch); err != nil {
			return nil, err
		}
		files = append(files, name)
	}
	if len(r.Open) > 0 {
		name := filepath.Join(dir, "openloop.png")
		row := []*plot.Plot{
			openPlot(r, servers, "p50", func(x OpenResult) spread { return x.P50 }),
			openPlot(r, servers, "p99", func(x OpenResult) spread { return x.P99 }),
			openPlot(r, servers, "p99.9", func(x OpenResult) spread { return x.P999 })}
		if err := savePNG(name, [][]*plot.Plot{row}, 14*vg.Inch, 4.5*vg.Inch); err != nil {
			return nil, err
		}
		files = append(files, name)
	}
	return files, nil
}

// style gives each server the same colour in every chart; stages are drawn
// solid and peers dashed, so the workbook's own servers stand out.
func style(i int, t *target) (color.Color, []vg.Length) {
	if t.Kind == "peer" {
		return plotutil.Color(i), []vg.Length{vg.Points(4), vg.Points(2)}
	}
	return plotutil.Color(i), nil
}

func idlePlot(r *Results, servers []*target, which string, value func(IdleResult) float64) *plot.Plot {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Idle load: %s round trip, one active client", which)
	p.X.Label.Text = "idle clients"
	p.Y.Label.Text = "µs"
	p.Y.Min = 0
	var ticks []plot.Tick
	for i, n := range r.Plan.IdleConns {
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: fmt.Sprint(n)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = -0.2, float64(len(ticks)-1)+0.2
	p.Legend.Top, p.Legend.Left = true, true
	for i, t := range servers {
		if t == nil {
			continue
		}
		var pts plotter.XYs
		for j, n := range r.Plan.IdleConns {
			for _, x := range r.Idle {
				if x.Server == t.Name && x.Idle == n && x.Limit == "" {
					pts = append(pts, plotter.XY{X: float64(j), Y: value(x)})
				}
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			continue
		}
		c, dashes := style(i, t)
		line.Color, line.Dashes, line.Width = c, dashes, vg.Points(1.5)
		points.Color, points.Shape = c, draw.CircleGlyph{}
		p.Add(line, points)
		label := t.Name
		if len(pts) < len(r.Plan.IdleConns) {
			label += " (stopped at its limit)"
		}
		p.Legend.Add(label, line, points)
	}
	return p
}

func scaled(s spread, k float64) spread {
	return spread{Median: s.Median * k, Min: s.Min * k, Max: s.Max * k, N: s.N}
}

// cellPlot draws one bar per server in each throughput cell of a core
// setting, its height the median over the rounds (the tables give the
// spread).
func cellPlot(r *Results, servers []*target, cores, title, unit string, value func(ThroughputResult) spread) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = unit
	p.Y.Min = 0
	cells := r.Plan.OneCore
	if cores == "default" {
		cells = r.Plan.Default
	}
	var groups []string
	for _, c := range cells {
		groups = append(groups, fmt.Sprintf("%d × %d B", c.Clients, c.Size))
	}
	p.NominalX(groups...)
	p.Legend.Top = true
	var shown []*target
	for _, t := range servers {
		if t != nil {
			shown = append(shown, t)
		}
	}
	width := vg.Points(300) / vg.Length(max(len(groups), 1)) * 0.8 / vg.Length(max(len(shown), 1))
	top, k := 0.0, 0
	for i, t := range servers {
		if t == nil {
			continue
		}
		vals := make(plotter.Values, len(cells))
		for j, c := range cells {
			for _, x := range r.Throughput {
				if x.Server == t.Name && x.Cores == cores && x.Clients == c.Clients && x.MsgBytes == c.Size && x.Rounds > 0 {
					v := value(x)
					vals[j] = v.Median
					top = max(top, v.Max)
				}
			}
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			continue
		}
		c, _ := style(i, t)
		bars.Color, bars.LineStyle.Width = c, 0
		bars.Offset = width * vg.Length(float64(k)-float64(len(shown)-1)/2)
		p.Add(bars)
		k++
		p.Legend.Add(t.Name, bars)
	}
	p.Y.Max = top * 1.45 // room for the legend
	return p
}

// openPlot draws one open-loop percentile against the offered rate, one line
// per server, on a logarithmic scale (tails span orders of magnitude).
func openPlot(r *Results, servers []*target, which string, value func(OpenResult) spread) *plot.Plot {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Open loop: %s latency from due time", which)
	p.X.Label.Text = fmt.Sprintf("offered thousand requests/s (%d clients)", r.Plan.OpenClients)
	p.Y.Label.Text = "µs (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	for i, t := range servers {
		if t == nil {
			continue
		}
		var pts plotter.XYs
		for _, x := range r.Open {
			if x.Server == t.Name && x.Rounds > 0 && value(x).Median > 0 {
				pts = append(pts, plotter.XY{X: x.Rate / 1000, Y: value(x).Median})
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			continue
		}
		c, dashes := style(i, t)
		line.Color, line.Dashes, line.Width = c, dashes, vg.Points(1.5)
		points.Color, points.Shape = c, draw.CircleGlyph{}
		p.Add(line, points)
		p.Legend.Add(t.Name, line, points)
	}
	return p
}

func savePNG(name string, plots [][]*plot.Plot, w, h vg.Length) error {
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(plots), Cols: len(plots[0]), PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		for j := range plots[i] {
			plots[i][j].Draw(canvases[i][j])
		}
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
