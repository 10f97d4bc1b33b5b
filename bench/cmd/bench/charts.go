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
// per server) and throughput.png (requests/s bars, one panel per message
// size and core setting).
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
		p50, p99 := idlePlot(r, servers, "p50", func(x IdleResult) float64 { return x.P50us }),
			idlePlot(r, servers, "p99", func(x IdleResult) float64 { return x.P99us })
		if err := savePNG(name, [][]*plot.Plot{{p50, p99}}, 10*vg.Inch, 4*vg.Inch); err != nil {
			return nil, err
		}
		files = append(files, name)
	}
	if len(r.Throughput) > 0 {
		name := filepath.Join(dir, "throughput.png")
		// One scale for all panels, with headroom for the legend,
		// which only the first panel carries.
		top := 0.0
		for _, x := range r.Throughput {
			top = max(top, x.RPS/1000)
		}
		var rows [][]*plot.Plot
		for i, size := range r.Plan.Sizes {
			var row []*plot.Plot
			for j, cores := range []string{"default", "one core"} {
				p := throughputPlot(r, servers, size, cores)
				p.Y.Max = top * 1.5
				if i+j > 0 {
					p.Legend = plot.NewLegend()
				}
				row = append(row, p)
			}
			rows = append(rows, row)
		}
		if err := savePNG(name, rows, 11*vg.Inch, vg.Length(len(rows))*3.6*vg.Inch); err != nil {
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

func throughputPlot(r *Results, servers []*target, size int, cores string) *plot.Plot {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Throughput: %d B messages, %s", size, cores)
	p.Y.Label.Text = "thousand requests/s"
	p.Y.Min = 0
	var groups []string
	for _, c := range r.Plan.Clients {
		groups = append(groups, fmt.Sprintf("%d clients", c))
	}
	p.NominalX(groups...)
	p.Legend.Top = true
	// Bars of one group share 80% of the space a group gets.
	var shown []*target
	for _, t := range servers {
		if t != nil {
			shown = append(shown, t)
		}
	}
	width := vg.Points(360) / vg.Length(len(groups)) * 0.8 / vg.Length(max(len(shown), 1))
	k := 0 // position of the bar within its group
	for i, t := range servers {
		if t == nil {
			continue
		}
		vals := make(plotter.Values, len(r.Plan.Clients))
		any := false
		for j, c := range r.Plan.Clients {
			for _, x := range r.Throughput {
				if x.Server == t.Name && x.Cores == cores && x.MsgBytes == size && x.Clients == c {
					vals[j], any = x.RPS/1000, true
				}
			}
		}
		if !any {
			continue
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			continue
		}
		c, _ := style(i, t)
		bars.Color, bars.LineStyle.Width = c, 0
		bars.Offset = width * vg.Length(float64(k)-float64(len(shown)-1)/2)
		k++
		p.Add(bars)
		p.Legend.Add(t.Name, bars)
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
