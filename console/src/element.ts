// Only the Element Plus components the console uses (the whole library is three times the bytes).
import type { App } from 'vue'
import {
  ElAlert, ElButton, ElCascader, ElCheckTag, ElConfigProvider, ElDatePicker, ElDescriptions, ElDescriptionsItem,
  ElDialog, ElForm, ElFormItem, ElInput, ElOption, ElProgress, ElSelect, ElTable, ElTableColumn, ElTag, ElTimeline,
  ElTimelineItem, ElTooltip,
} from 'element-plus'
import 'element-plus/theme-chalk/base.css'
import 'element-plus/theme-chalk/el-alert.css'
import 'element-plus/theme-chalk/el-button.css'
import 'element-plus/theme-chalk/el-cascader.css'
import 'element-plus/theme-chalk/el-cascader-panel.css'
import 'element-plus/theme-chalk/el-checkbox.css'
import 'element-plus/theme-chalk/el-radio.css'
import 'element-plus/theme-chalk/el-check-tag.css'
import 'element-plus/theme-chalk/el-date-picker.css'
import 'element-plus/theme-chalk/el-date-picker-panel.css'
import 'element-plus/theme-chalk/el-descriptions.css'
import 'element-plus/theme-chalk/el-descriptions-item.css'
import 'element-plus/theme-chalk/el-dialog.css'
import 'element-plus/theme-chalk/el-overlay.css'
import 'element-plus/theme-chalk/el-form.css'
import 'element-plus/theme-chalk/el-form-item.css'
import 'element-plus/theme-chalk/el-input.css'
import 'element-plus/theme-chalk/el-message.css'
import 'element-plus/theme-chalk/el-option.css'
import 'element-plus/theme-chalk/el-popper.css'
import 'element-plus/theme-chalk/el-progress.css'
import 'element-plus/theme-chalk/el-scrollbar.css'
import 'element-plus/theme-chalk/el-select.css'
import 'element-plus/theme-chalk/el-select-dropdown.css'
import 'element-plus/theme-chalk/el-table.css'
import 'element-plus/theme-chalk/el-table-column.css'
import 'element-plus/theme-chalk/el-tag.css'
import 'element-plus/theme-chalk/el-timeline.css'
import 'element-plus/theme-chalk/el-timeline-item.css'
import 'element-plus/theme-chalk/el-tooltip.css'

const COMPONENTS = [
  ElAlert, ElButton, ElCascader, ElCheckTag, ElConfigProvider, ElDatePicker, ElDescriptions, ElDescriptionsItem,
  ElDialog, ElForm, ElFormItem, ElInput, ElOption, ElProgress, ElSelect, ElTable, ElTableColumn, ElTag, ElTimeline,
  ElTimelineItem, ElTooltip,
]

export function useElement(app: App): void {
  for (const c of COMPONENTS) app.use(c)
}
