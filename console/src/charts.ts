// ECharts, only the parts the console draws (keeps the bundle small).
import * as echarts from 'echarts/core'
import { BarChart, SankeyChart, PieChart } from 'echarts/charts'
import { GridComponent, LegendComponent, TooltipComponent, TitleComponent, AriaComponent } from 'echarts/components'
import { SVGRenderer } from 'echarts/renderers'

echarts.use([BarChart, SankeyChart, PieChart, GridComponent, LegendComponent, TooltipComponent, TitleComponent,
  AriaComponent, SVGRenderer])

export { echarts }
